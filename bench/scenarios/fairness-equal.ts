/**
 * `fairness-equal`: shares of the workers under continuous demand.
 *
 * Equal run: 50 users each keep 8 turns outstanding (submitting the next as one ends) — 400 in
 * flight for 16 worker slots, so the workers are the bottleneck and the scheduler decides who
 * runs. Completed turns per user in a fixed window (after a warm-up) → Jain's fairness index
 * (Σx)² / (n·Σx²); target ≥ 0.99.
 *
 * Weighted run, same farm: three users on tiers of weight 1, 2 and 4 (FARM_CONFIG's
 * `scheduler.tiers` / `userTiers`), each keeping 32 turns outstanding, more than the dispatch
 * window (worker slots + prefetch), so every one of them always has turns waiting. Each user's
 * share of the completions, divided by its weight's share, should be 1; target: the largest
 * deviation from 1 within 5%. The running cap (64) is above the window, so it never binds.
 */

import { keepOutstanding, waitIdle } from "../farm-client.js";
import type { BenchFarm } from "../farm-processes.js";
import { runTurn } from "../load.js";
import { jainIndex, median, round } from "../stats.js";

const SETTINGS = { workerConcurrency: 16, simTtftMs: 200, maxRunningPerUser: 64 };
const WEIGHTS = { w1: 1, w2: 2, w4: 4 } as const;
const weightedUser = (tier: string) => `weighted-${tier}`;

export function fairnessEqualFarmEnv(): Record<string, string> {
  return {
    WORKER_CONCURRENCY: String(SETTINGS.workerConcurrency),
    SIM_TTFT_MS: String(SETTINGS.simTtftMs),
    SIM_TOKEN_DELAY_MS: "0",
    FAIR_MAX_RUNNING_PER_USER: String(SETTINGS.maxRunningPerUser),
  };
}

export function fairnessEqualFarmConfig(): Record<string, unknown> {
  return {
    scheduler: {
      tiers: Object.fromEntries(
        Object.entries(WEIGHTS).map(([tier, weight]) => [tier, { weight }]),
      ),
      userTiers: Object.fromEntries(Object.keys(WEIGHTS).map((tier) => [weightedUser(tier), tier])),
    },
  };
}

export interface FairnessEqualOptions {
  users: number;
  outstandingPerUser: number;
  weightedOutstandingPerUser: number;
  warmupS: number;
  windowS: number;
}

const turnBody = (userId: string) => ({ input: "hello there", user_id: userId, tools: [] });

/**
 * Every user keeps `outstanding` turns in flight for warm-up + window; returns the turns each
 * user completed inside the window (by the arrival of their `turn_terminal`).
 */
async function completionsInWindow(
  farm: BenchFarm,
  users: string[],
  outstanding: number,
  warmupS: number,
  windowS: number,
) {
  const started = performance.now();
  const windowStart = started + warmupS * 1000;
  const windowEnd = windowStart + windowS * 1000;
  const counts = new Map(users.map((u) => [u, 0]));
  let failed = 0;
  let errors = 0;
  let completedInWindow = 0;
  await Promise.all(
    users.map((userId) =>
      keepOutstanding(
        outstanding,
        () => runTurn(farm.apiUrl, turnBody(userId), "stream_submit"),
        () => performance.now() < windowEnd,
        (t) => {
          const at = t.submittedAt + t.terminalMs;
          if (t.status !== "completed") failed++;
          else if (at >= windowStart && at < windowEnd) {
            counts.set(userId, (counts.get(userId) ?? 0) + 1);
            completedInWindow++;
          }
        },
        () => errors++,
      ),
    ),
  );
  await waitIdle(farm.apiUrl);
  return { counts: users.map((u) => counts.get(u) ?? 0), failed, errors, completedInWindow };
}

export async function fairnessEqual(
  farm: BenchFarm,
  options: FairnessEqualOptions,
  log: (line: string) => void,
) {
  const equalUsers = Array.from({ length: options.users }, (_, i) => `equal-${i}`);
  log(
    `fairness-equal: ${options.users} users × ${options.outstandingPerUser} outstanding, ` +
      `${options.warmupS} s warm-up + ${options.windowS} s window`,
  );
  const equal = await completionsInWindow(
    farm,
    equalUsers,
    options.outstandingPerUser,
    options.warmupS,
    options.windowS,
  );
  const jain = jainIndex(equal.counts);
  log(`fairness-equal: Jain ${round(jain, 4)}, ${equal.completedInWindow} turns in the window`);

  const tiers = Object.keys(WEIGHTS) as (keyof typeof WEIGHTS)[];
  log(`fairness-equal: weights ${tiers.map((t) => WEIGHTS[t]).join(":")}`);
  const weighted = await completionsInWindow(
    farm,
    tiers.map(weightedUser),
    options.weightedOutstandingPerUser,
    options.warmupS,
    options.windowS,
  );
  const total = weighted.counts.reduce((a, b) => a + b, 0);
  const weightSum = tiers.reduce((a, t) => a + WEIGHTS[t], 0);
  const normalised = tiers.map(
    (t, i) => (weighted.counts[i] ?? 0) / total / (WEIGHTS[t] / weightSum),
  );
  const maxDeviation = Math.max(...normalised.map((x) => Math.abs(x - 1)));

  const sortedCounts = [...equal.counts].sort((a, b) => a - b);
  return {
    equal: {
      users: options.users,
      outstanding_per_user: options.outstandingPerUser,
      window_s: options.windowS,
      turns_in_window: equal.completedInWindow,
      turns_per_s: round(equal.completedInWindow / options.windowS),
      per_user_min: sortedCounts[0],
      per_user_median: median(equal.counts),
      per_user_max: sortedCounts[sortedCounts.length - 1],
      jain_index: round(jain, 4),
      target_met: jain >= 0.99,
      failed_turns: equal.failed,
      refused_submits: equal.errors,
    },
    weighted: {
      weights: tiers.map((t) => WEIGHTS[t]),
      outstanding_per_user: options.weightedOutstandingPerUser,
      window_s: options.windowS,
      turns_in_window: tiers.map((_, i) => weighted.counts[i] ?? 0),
      turns_per_s: round(total / options.windowS),
      /** Turns relative to the weight-1 user's: [1, 2, 4] would be exact. */
      ratio: tiers.map((_, i) => round((weighted.counts[i] ?? 0) / (weighted.counts[0] ?? 1), 3)),
      share_over_weight_share: normalised.map((x) => round(x, 3)),
      max_relative_deviation: round(maxDeviation, 4),
      target_met: maxDeviation <= 0.05,
      failed_turns: weighted.failed,
      refused_submits: weighted.errors,
    },
    settings: { ...SETTINGS, sim_token_delay_ms: 0, warmup_s: options.warmupS },
  };
}
