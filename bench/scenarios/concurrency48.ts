/**
 * `concurrency48`: wunder's published quick baseline shape (`stream_high_concurrency`) — 48
 * concurrent streaming turns, 240 in all (wunder: 15.9 turns/s, p95 667 ms, first-event p95
 * 433 ms, mock model). Each turn: one tool call, two model calls, simulator at zero latency.
 *
 * Like wunder's `stream: true`, each turn is one streaming POST. The same waves are also run
 * as POST then GET /events, the two-request flow, and reported beside it.
 * Four warm-up waves, then `repeats` measured waves; the figures are those of the median wave
 * (by turns/s), with every wave's rate listed so the spread is visible.
 */
import type { BenchFarm } from "../farm-processes.js";
import { runTurn, runUsers, type TurnFlow, type TurnTiming } from "../load.js";
import { latencyFigures, round } from "../stats.js";

export interface Concurrency48Options {
  concurrency: number;
  turns: number;
  repeats: number;
}

/** JIT and heap sizes settle over the first thousand turns; measure after that. */
const WARMUP_WAVES = 4;

const WUNDER = { turns_per_s: 15.87, terminal_p95_ms: 667, first_event_p95_ms: 433 };

async function wave(farm: BenchFarm, options: Concurrency48Options, flow: TurnFlow, tag: string) {
  const started = performance.now();
  const timings = await runUsers(options.concurrency, options.turns, (i) =>
    runTurn(
      farm.apiUrl,
      { input: "please list the files", user_id: `${tag}-user-${i % options.concurrency}` },
      flow,
    ),
  );
  return { timings, turnsPerS: timings.length / ((performance.now() - started) / 1000) };
}

async function medianWave(farm: BenchFarm, options: Concurrency48Options, flow: TurnFlow) {
  for (let i = 0; i < WARMUP_WAVES; i++) await wave(farm, options, flow, `${flow}-warm${i}`);
  const waves: { timings: TurnTiming[]; turnsPerS: number }[] = [];
  for (let i = 0; i < options.repeats; i++)
    waves.push(await wave(farm, options, flow, `${flow}-${i}`));
  const sorted = [...waves].sort((a, b) => a.turnsPerS - b.turnsPerS);
  const median = sorted[Math.floor(sorted.length / 2)] as (typeof waves)[number];
  const t = median.timings;
  return {
    turns: t.length,
    failed_turns: waves.reduce(
      (n, w) => n + w.timings.filter((x) => x.status !== "completed").length,
      0,
    ),
    turns_per_s: round(median.turnsPerS),
    waves_turns_per_s: waves.map((w) => round(w.turnsPerS)),
    ...latencyFigures(
      "terminal",
      t.map((x) => x.terminalMs),
    ),
    ...latencyFigures(
      "first_event",
      t.map((x) => x.firstEventMs),
    ),
    events_per_turn: round(t.reduce((a, x) => a + x.events, 0) / t.length),
  };
}

export async function concurrency48(farm: BenchFarm, options: Concurrency48Options) {
  const streaming = await medianWave(farm, options, "stream_submit");
  const twoRequests = await medianWave(farm, options, "submit_then_stream");
  return {
    ...streaming,
    speedup_vs_wunder: round(streaming.turns_per_s / WUNDER.turns_per_s),
    wunder: WUNDER,
    submit_then_stream: twoRequests,
  };
}
