/**
 * `model-429`: a model that answers 429 must slow down only the turns that use it.
 *
 * Two farm models served by the one simulator, `a` (provider id `sim-a`) and `b` (`sim-b`),
 * configured through FARM_CONFIG; 16 worker slots and 200 ms per model call, so throughput is
 * bounded by the workers. Model b carries a steady closed-loop load (16 users × 3 turns
 * outstanding, more than the dispatch window) throughout:
 *
 * 1. warm-up, then a baseline window: b's completed turns per second;
 * 2. fault window: the simulator's runtime switch (`POST /sim/faults`) makes `sim-a` answer
 *    every request with 429 + Retry-After, while a stream of a-turns (many users) arrives on
 *    top of b's load. A 429 holds model a for every worker; turns whose wait would pass
 *    MODEL_WAIT_MAX_MS are parked (BullMQ delayed) and give their slot back;
 * 3. the switch is cleared; b's load runs on for a recovery window while the parked a-turns
 *    come back, then everything is drained.
 *
 * Figures: b's throughput in the fault window over the baseline's (target ≥ 0.9), as totals
 * and as medians of one-second bins, and every turn's outcome (target: none failed; all a-turns
 * complete after the fault clears).
 */

import {
  clearSimFaults,
  getTurn,
  keepOutstanding,
  pooled,
  setSimFault,
  waitIdle,
} from "../farm-client.js";
import type { BenchFarm } from "../farm-processes.js";
import { runTurn, type TurnTiming } from "../load.js";
import { latencyFigures, median, percentile, round } from "../stats.js";
import { openStoredEvents } from "../stored-events.js";

const SETTINGS = {
  workerConcurrency: 16,
  simTtftMs: 200,
  bUsers: 16,
  bOutstandingPerUser: 3,
  aUsers: 50,
};
const MODEL_IDS = { a: "sim-a", b: "sim-b" } as const;
/** After the recovery window, how long the a-turns get to finish before they count as stuck. */
const A_DRAIN_MAX_MS = 90_000;

export function model429FarmEnv(): Record<string, string> {
  return {
    WORKER_CONCURRENCY: String(SETTINGS.workerConcurrency),
    SIM_TTFT_MS: String(SETTINGS.simTtftMs),
    SIM_TOKEN_DELAY_MS: "0",
  };
}

export function model429FarmConfig(ports: { simPort: number }): Record<string, unknown> {
  const model = (id: string) => ({
    baseUrl: `http://127.0.0.1:${ports.simPort}/v1`,
    apiKey: "sim",
    model: id,
  });
  return { models: { a: model(MODEL_IDS.a), b: model(MODEL_IDS.b) } };
}

export interface Model429Options {
  warmupS: number;
  baselineS: number;
  faultS: number;
  recoveryS: number;
  retryAfterS: number;
  aTurnsPerS: number;
}

const turnBody = (model: "a" | "b", userId: string) => ({
  input: "hello there",
  user_id: userId,
  model,
  tools: [],
});

const sleepUntil = (at: number) =>
  new Promise((r) => setTimeout(r, Math.max(0, at - performance.now())));

/**
 * What model a's fault did inside the farm, from the stored events: calls answered 429
 * (`llm_stream_retry` with reason rate_limited), the most of them in one second (parked turns
 * that wake together call together), and parks (`progress{stage:"waiting_for_model"}`).
 */
async function faultEvents(farm: BenchFarm, sinceEpochMs: number) {
  const db = openStoredEvents(farm.dataDir);
  try {
    const query = (where: string) =>
      db.select<{ ts: number }>("ts", `ts >= ? AND ${where}`, sinceEpochMs);
    const rateLimitedWhere = `type = 'llm_stream_retry' AND envelope LIKE '%"reason":"rate_limited"%'`;
    // The persister stores events in batches: wait until the count stops moving.
    let rows = query(rateLimitedWhere);
    for (let tries = 0; tries < 20; tries++) {
      await new Promise((r) => setTimeout(r, 250));
      const again = query(rateLimitedWhere);
      if (again.length === rows.length) break;
      rows = again;
    }
    const perSecond = new Map<number, number>();
    for (const { ts } of rows) {
      const second = Math.floor((ts - sinceEpochMs) / 1000);
      perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    }
    const parks = query(
      `type = 'progress' AND envelope LIKE '%"stage":"waiting_for_model"%'`,
    ).length;
    return {
      a_calls_answered_429: rows.length,
      a_calls_answered_429_max_in_one_second: Math.max(0, ...perSecond.values()),
      a_parks: parks,
    };
  } finally {
    db.close();
  }
}

/** Completions per one-second bin of [from, to). */
function perSecond(doneAt: number[], from: number, to: number): number[] {
  const bins = new Array<number>(Math.floor((to - from) / 1000)).fill(0);
  for (const at of doneAt) {
    const i = Math.floor((at - from) / 1000);
    if (at >= from && i < bins.length) bins[i] = (bins[i] ?? 0) + 1;
  }
  return bins;
}

export async function model429(
  farm: BenchFarm,
  options: Model429Options,
  log: (line: string) => void,
) {
  const started = performance.now();
  const b: TurnTiming[] = [];
  let bErrors = 0;
  let bRunning = true;
  const bLoad = Promise.all(
    Array.from({ length: SETTINGS.bUsers }, (_, u) =>
      keepOutstanding(
        SETTINGS.bOutstandingPerUser,
        () => runTurn(farm.apiUrl, turnBody("b", `b-user-${u}`), "stream_submit"),
        () => bRunning,
        (t) => b.push(t),
        () => bErrors++,
      ),
    ),
  );

  const baselineFrom = started + options.warmupS * 1000;
  const faultOn = baselineFrom + options.baselineS * 1000;
  await sleepUntil(faultOn);
  await setSimFault(farm.simUrl, {
    model: MODEL_IDS.a,
    rate429: 1,
    retryAfterS: options.retryAfterS,
  });
  const faultFrom = performance.now();
  const faultFromEpochMs = Date.now();
  log(
    `model-429: sim-a answers 429 (Retry-After ${options.retryAfterS} s) for ${options.faultS} s`,
  );
  const aTurns: Promise<TurnTiming | Error>[] = [];
  const aSettled: (TurnTiming | Error)[] = [];
  const faultUntil = faultFrom + options.faultS * 1000;
  const stream = setInterval(() => {
    if (performance.now() >= faultUntil) return;
    const user = `a-user-${aTurns.length % SETTINGS.aUsers}`;
    const turn = runTurn(farm.apiUrl, turnBody("a", user), "stream_submit").catch(
      (err: Error) => err,
    );
    aTurns.push(
      turn.then((x) => {
        aSettled.push(x);
        return x;
      }),
    );
  }, 1000 / options.aTurnsPerS);
  await sleepUntil(faultUntil);
  clearInterval(stream);
  await clearSimFaults(farm.simUrl);
  const faultTo = performance.now();
  log("model-429: fault cleared; recovery window");
  await sleepUntil(faultTo + options.recoveryS * 1000);
  const recoveryTo = performance.now();
  bRunning = false;
  await bLoad;
  // Parked a-turns must all come back; do not wait forever if some never do.
  await Promise.race([Promise.all(aTurns), sleepUntil(performance.now() + A_DRAIN_MAX_MS)]);
  const aResults = [...aSettled];
  if (aResults.length === aTurns.length) await waitIdle(farm.apiUrl);

  const aDone = aResults.filter((x): x is TurnTiming => !(x instanceof Error));
  const inside = await faultEvents(farm, faultFromEpochMs);
  const aStates = await pooled(aDone, 16, (t) => getTurn(farm.apiUrl, t.turnId));
  const aAttempts = aStates.map((t) => t.attempt);
  const aDoneAt = aDone.map((t) => t.submittedAt + t.terminalMs);
  const bDoneAt = b
    .filter((t) => t.status === "completed")
    .map((t) => t.submittedAt + t.terminalMs);
  const bIn = (from: number, to: number) =>
    b.filter((t) => {
      const at = t.submittedAt + t.terminalMs;
      return at >= from && at < to;
    });

  const baselineBins = perSecond(bDoneAt, baselineFrom, faultOn);
  const faultBins = perSecond(bDoneAt, faultFrom, faultTo);
  const recoveryBins = perSecond(bDoneAt, faultTo, recoveryTo);
  const rate = (bins: number[]) => bins.reduce((x, y) => x + y, 0) / bins.length;
  const baselineRate = rate(baselineBins);
  const faultRate = rate(faultBins);
  const ratio = faultRate / baselineRate;
  const medianRatio = median(faultBins) / median(baselineBins);
  const failed = [...b, ...aDone].filter((t) => t.status !== "completed").length;
  return {
    b_baseline_turns_per_s: round(baselineRate),
    b_fault_turns_per_s: round(faultRate),
    b_recovery_turns_per_s: round(rate(recoveryBins)),
    b_fault_to_baseline_ratio: round(ratio, 3),
    b_baseline_per_second_median: median(baselineBins),
    b_fault_per_second_median: median(faultBins),
    b_fault_per_second_p5: percentile(faultBins, 5),
    b_fault_per_second: faultBins,
    b_per_second_median_ratio: round(medianRatio, 3),
    throughput_target_met: ratio >= 0.9,
    ...latencyFigures(
      "b_baseline_terminal",
      bIn(baselineFrom, faultOn).map((t) => t.terminalMs),
    ),
    ...latencyFigures(
      "b_fault_terminal",
      bIn(faultFrom, faultTo).map((t) => t.terminalMs),
    ),
    b_turns: b.length,
    a_turns: aTurns.length,
    a_turns_completed: aDone.filter((t) => t.status === "completed").length,
    a_turns_unfinished: aTurns.length - aResults.length,
    a_turns_done_during_fault: aDoneAt.filter((at) => at < faultTo).length,
    a_attempts_p50: median(aAttempts),
    a_attempts_max: Math.max(...aAttempts),
    a_last_done_after_clear_s: round((Math.max(...aDoneAt) - faultTo) / 1000, 2),
    ...inside,
    failed_turns: failed,
    refused_or_broken_submits: bErrors + (aResults.length - aDone.length),
    no_failures_target_met: failed === 0 && bErrors === 0 && aDone.length === aTurns.length,
    settings: {
      ...SETTINGS,
      sim_token_delay_ms: 0,
      fault_s: options.faultS,
      retry_after_s: options.retryAfterS,
      a_turns_per_s: options.aTurnsPerS,
      baseline_s: options.baselineS,
      recovery_s: options.recoveryS,
    },
  };
}
