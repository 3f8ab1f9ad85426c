/**
 * `fairness-burst`: one heavy user must not delay everyone else. User H submits 1,000 turns;
 * once they are all accepted, 20 light users submit one turn each, at once. The figure is each
 * light turn's queue wait — submit → its `progress{stage:"start"}` event at the client, and
 * `started_at − created_at` as the farm recorded it — compared with the same 20 light turns on
 * the same farm with no backlog.
 *
 * The farm: 16 worker slots, the simulator answering after 200 ms, and a running cap (64) that
 * lets H alone fill every slot, so the round-robin, not the cap, is what lets the light users in.
 * Target: p95 under burst ≤ 2 × idle p95 + one dispatch round, where a round is the time the
 * workers need to start one turn of every backlogged user: users / (slots / turn duration), with
 * slots / turn duration measured as the rate turns start during the burst. (The idle wave has
 * 20 turns for 16 slots, so its slowest turns wait for a slot too: that is the same-shape
 * reference; one turn at a time on the idle farm is reported beside it.)
 *
 * Each repeat: idle wave, then the burst; afterwards H's leftover turns are cancelled (newest
 * first) and the farm is drained, so the repeats are independent.
 *
 * Reading the spread: the simulator's latency is constant, so H's turns, started together,
 * keep finishing together: slots free in waves one turn apart. A light turn starts at the next
 * wave after its admission (a phase anywhere in 0..1 turn), and the 20 lights need two waves
 * (the first one also starts the H turns already prefetched into BullMQ's FIFO). So one repeat's
 * p95 is that phase plus about one turn, and varies by a turn between repeats; hence several.
 */

import {
  cancelTurn,
  getTurn,
  pooled,
  queueCounts,
  serverWaitMs,
  waitIdle,
} from "../farm-client.js";
import type { BenchFarm } from "../farm-processes.js";
import { runTurn, runUsers, submitTurn } from "../load.js";
import { median, percentile, round } from "../stats.js";

export const FAIRNESS_BURST_SETTINGS = {
  workerConcurrency: 16,
  simTtftMs: 200,
  maxRunningPerUser: 64,
};

export function fairnessBurstFarmEnv(heavyTurns: number): Record<string, string> {
  const s = FAIRNESS_BURST_SETTINGS;
  return {
    WORKER_CONCURRENCY: String(s.workerConcurrency),
    SIM_TTFT_MS: String(s.simTtftMs),
    SIM_TOKEN_DELAY_MS: "0",
    FAIR_MAX_RUNNING_PER_USER: String(s.maxRunningPerUser),
    // H's whole burst must be accepted, not refused with 429 user_queue_full.
    FAIR_MAX_QUEUED_PER_USER: String(Math.max(100, heavyTurns + 100)),
  };
}

export interface FairnessBurstOptions {
  heavyTurns: number;
  lightUsers: number;
  repeats: number;
  submitConcurrency: number;
}

/** Long enough for several waves of slots, short next to H's backlog (≈ 12 s of work). */
const RATE_WINDOW_MS = 2_000;

/** One model call, a short text answer, no tools: the turn lasts about SIM_TTFT_MS. */
const turnBody = (userId: string) => ({ input: "hello there", user_id: userId, tools: [] });

interface LightSample {
  clientWaitMs: number;
  serverWaitMs: number;
  runMs: number;
  status: string;
}

/** The light users' turns, all submitted at once; waits measured per turn. */
async function lightWave(farm: BenchFarm, users: string[]): Promise<LightSample[]> {
  const timings = await Promise.all(
    users.map(async (userId) => {
      let startedAt = Number.NaN;
      const t = await runTurn(farm.apiUrl, turnBody(userId), "stream_submit", () => ({
        onEvent(type, at) {
          if (type === "progress") startedAt = at;
        },
      }));
      return { t, startedAt };
    }),
  );
  return Promise.all(
    timings.map(async ({ t, startedAt }) => ({
      clientWaitMs: startedAt - t.submittedAt,
      serverWaitMs: serverWaitMs(await getTurn(farm.apiUrl, t.turnId)),
      runMs: t.submittedAt + t.terminalMs - startedAt,
      status: t.status,
    })),
  );
}

const p95 = (samples: LightSample[]) =>
  round(
    percentile(
      samples.map((x) => x.clientWaitMs),
      95,
    ),
  );

const figuresOf = (prefix: string, values: number[]) => ({
  [`${prefix}_p50_ms`]: round(percentile(values, 50)),
  [`${prefix}_p95_ms`]: round(percentile(values, 95)),
  [`${prefix}_max_ms`]: round(Math.max(...values)),
});

export async function fairnessBurst(
  farm: BenchFarm,
  options: FairnessBurstOptions,
  log: (line: string) => void,
) {
  const s = FAIRNESS_BURST_SETTINGS;
  log("fairness-burst: warm-up");
  await runUsers(s.workerConcurrency, s.workerConcurrency * 8, (i) =>
    runTurn(farm.apiUrl, turnBody(`warm-${i % s.workerConcurrency}`), "stream_submit"),
  );
  await waitIdle(farm.apiUrl);

  const idle: LightSample[] = [];
  const burst: LightSample[] = [];
  const idleSequential: number[] = [];
  const perRepeat: Record<string, number>[] = [];
  const startRates: number[] = [];
  let heavyCancelled = 0;
  let heavyFailed = 0;
  for (let rep = 0; rep < options.repeats; rep++) {
    const lightUsers = Array.from({ length: options.lightUsers }, (_, i) => `light-${rep}-${i}`);
    // Idle: the same wave with nothing else queued, and one turn at a time for reference.
    const idleWave = await lightWave(farm, lightUsers);
    idle.push(...idleWave);
    for (const userId of lightUsers.slice(0, 5)) {
      idleSequential.push(...(await lightWave(farm, [userId])).map((x) => x.clientWaitMs));
    }
    await waitIdle(farm.apiUrl);

    log(`fairness-burst: repeat ${rep + 1}: H submits ${options.heavyTurns} turns`);
    const heavyUser = `heavy-${rep}`;
    const submitStarted = performance.now();
    const heavyIds = await pooled(
      Array.from({ length: options.heavyTurns }),
      options.submitConcurrency,
      () => submitTurn(farm.apiUrl, turnBody(heavyUser)),
    );
    const submitSeconds = (performance.now() - submitStarted) / 1000;
    const before = await queueCounts(farm.apiUrl);
    const waveFrom = performance.now();
    const burstWave = await lightWave(farm, lightUsers);
    burst.push(...burstWave);
    // The start rate over a few waves of slots (H still has a backlog, so the workers run
    // flat out): how fast a round of dispatch goes.
    await new Promise((r) =>
      setTimeout(r, Math.max(0, waveFrom + RATE_WINDOW_MS - performance.now())),
    );
    const after = await queueCounts(farm.apiUrl);
    const rateSeconds = (performance.now() - waveFrom) / 1000;
    startRates.push((before.waiting - after.waiting + lightUsers.length) / rateSeconds);
    log(
      `fairness-burst: repeat ${rep + 1}: H backlog ${before.waiting} (${after.waiting} 2 s later), ` +
        `light wait p95 ${p95(burstWave)} ms`,
    );

    // Drain H quickly: cancel newest first (the dispatcher takes from the oldest end).
    const ended = await pooled([...heavyIds].reverse(), options.submitConcurrency, (id) =>
      cancelTurn(farm.apiUrl, id),
    );
    heavyCancelled += ended.filter((t) => t.status === "cancelled").length;
    heavyFailed += ended.filter((t) => t.status === "failed").length;
    await waitIdle(farm.apiUrl);
    perRepeat.push({
      heavy_submit_s: round(submitSeconds, 2),
      heavy_waiting_at_light_submit: before.waiting,
      heavy_waiting_2s_later: after.waiting,
      turns_started_per_s: round(startRates[startRates.length - 1] ?? Number.NaN),
      idle_p95_ms: p95(idleWave),
      burst_p95_ms: p95(burstWave),
    });
  }

  const burstWaits = burst.map((x) => x.clientWaitMs);
  const idleWaits = idle.map((x) => x.clientWaitMs);
  // One round: every backlogged user (the light ones and H) gets one turn started, at the rate
  // the workers start turns under the burst (worker slots / the time a turn holds a slot).
  const turnMs = median([...idle, ...burst].map((x) => x.runMs));
  const startRate = median(startRates);
  const usersReady = options.lightUsers + 1;
  const roundMs = (usersReady / startRate) * 1000;
  const p95Burst = percentile(burstWaits, 95);
  const p95Idle = percentile(idleWaits, 95);
  const bound = 2 * p95Idle + roundMs;
  return {
    light_turns_measured: burst.length,
    failed_light_turns: [...idle, ...burst].filter((x) => x.status !== "completed").length,
    ...figuresOf("burst_wait", burstWaits),
    ...figuresOf("idle_wait", idleWaits),
    ...figuresOf(
      "burst_server_wait",
      burst.map((x) => x.serverWaitMs),
    ),
    ...figuresOf(
      "idle_server_wait",
      idle.map((x) => x.serverWaitMs),
    ),
    idle_single_turn_wait_p50_ms: round(percentile(idleSequential, 50)),
    idle_single_turn_wait_p95_ms: round(percentile(idleSequential, 95)),
    turn_run_p50_ms: round(turnMs),
    turns_started_per_s: round(startRate),
    slot_time_per_turn_ms: round((s.workerConcurrency / startRate) * 1000),
    users_ready: usersReady,
    dispatch_round_ms: round(roundMs),
    target_bound_ms: round(bound),
    target_met: p95Burst <= bound,
    burst_p95_to_bound_ratio: round(p95Burst / bound, 3),
    burst_p95_to_idle_p95_ratio: round(p95Burst / p95Idle, 2),
    heavy_turns_per_repeat: options.heavyTurns,
    heavy_turns_cancelled: heavyCancelled,
    heavy_turns_failed: heavyFailed,
    repeats: perRepeat,
    settings: { ...s, sim_token_delay_ms: 0, light_users: options.lightUsers },
  };
}
