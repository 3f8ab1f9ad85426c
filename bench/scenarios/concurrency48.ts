/**
 * `concurrency48`: wunder's published quick baseline shape — 48 concurrent streaming turns,
 * 240 in all (wunder: 15.9 turns/s, p95 667 ms, first-event p95 433 ms, mock model).
 * Each turn: one tool call, two model calls, simulator at zero latency.
 */
import type { BenchFarm } from "../farm-processes.js";
import { runTurn, runUsers } from "../load.js";
import { latencyFigures, round } from "../stats.js";

export interface Concurrency48Options {
  concurrency: number;
  turns: number;
}

export async function concurrency48(farm: BenchFarm, options: Concurrency48Options) {
  // Warm up connections and JIT so the measured run is the steady state.
  await runUsers(options.concurrency, options.concurrency, (i) =>
    runTurn(farm.apiUrl, { input: "please list the files", user_id: `warm-${i}` }),
  );
  const started = performance.now();
  const timings = await runUsers(options.concurrency, options.turns, (i) =>
    runTurn(farm.apiUrl, {
      input: "please list the files",
      user_id: `user-${i % options.concurrency}`,
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const failed = timings.filter((t) => t.status !== "completed").length;
  return {
    turns: timings.length,
    failed_turns: failed,
    turns_per_s: round(timings.length / seconds),
    ...latencyFigures(
      "terminal",
      timings.map((t) => t.terminalMs),
    ),
    ...latencyFigures(
      "first_event",
      timings.map((t) => t.firstEventMs),
    ),
    ...latencyFigures(
      "submit",
      timings.map((t) => t.submitMs),
    ),
    events_per_turn: round(timings.reduce((a, t) => a + t.events, 0) / timings.length),
    wunder_turns_per_s: 15.87,
    wunder_terminal_p95_ms: 667,
    wunder_first_event_p95_ms: 433,
    speedup_vs_wunder: round(timings.length / seconds / 15.87),
  };
}
