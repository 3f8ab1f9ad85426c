/**
 * What `GET /v1/admin/queues` shows: where turns are (fair FIFOs, BullMQ states), how old the
 * oldest waiting and runnable turns are, the busiest users, live worker capacity, refused
 * submits and the models' budgets. Read-only, a handful of Redis calls, safe to poll.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { QueueOverview } from "../contract/admin.js";
import type { ModelBudget } from "../llm/model-budget.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { RedisKeys } from "../redis/keys.js";
import type { AdmissionGate } from "./admission-gate.js";
import type { Tiers } from "./tiers.js";
import { WorkerCapacity } from "./worker-capacity.js";

export interface OverviewSources {
  redis: Redis;
  keys: RedisKeys;
  queue: Queue<TurnJobData>;
  gate: AdmissionGate;
  tiers: Tiers;
  budget: ModelBudget;
}

/** Where turns are and how old the oldest waiting ones are: the overview's and metrics' core. */
export interface QueueCounts {
  counts: QueueOverview["counts"];
  oldestWaitingAgeMs: number | null;
  oldestRunnableAgeMs: number | null;
  users: QueueOverview["users"];
}

export async function queueCounts(
  src: Pick<OverviewSources, "redis" | "keys" | "queue">,
  now: number,
): Promise<QueueCounts> {
  const f = src.keys.fairPrefix;
  const [jobs, waiting, oldest, oldestHead, withWaiting, withRunning, runnable] = await Promise.all(
    [
      src.queue.getJobCounts("wait", "active", "delayed", "failed"),
      src.redis.zcard(`${f}waiting`),
      src.redis.zrange(`${f}waiting`, 0, 0, "WITHSCORES"),
      src.redis.zrange(`${f}heads`, 0, 0, "WITHSCORES"),
      src.redis.zcard(`${f}backlog`),
      src.redis.zcard(`${f}running`),
      src.redis.zcard(`${f}ready`),
    ],
  );
  return {
    counts: {
      waiting,
      dispatched: jobs.wait ?? 0,
      active: jobs.active ?? 0,
      parked: jobs.delayed ?? 0,
      failed_jobs: jobs.failed ?? 0,
    },
    oldestWaitingAgeMs: ageOf(oldest, now),
    oldestRunnableAgeMs: ageOf(oldestHead, now),
    users: { with_waiting: withWaiting, with_running: withRunning, runnable },
  };
}

export async function queueOverview(
  src: OverviewSources,
  topUsers: number,
): Promise<QueueOverview> {
  const now = Date.now();
  const [core, busiest, workers, rejections, models] = await Promise.all([
    queueCounts(src, now),
    busiestUsers(src, topUsers),
    WorkerCapacity.live(src.redis, src.keys, now),
    src.gate.rejectionCounts(),
    src.budget.usage(),
  ]);
  return {
    at: new Date(now).toISOString(),
    counts: core.counts,
    oldest_waiting_age_ms: core.oldestWaitingAgeMs,
    oldest_runnable_age_ms: core.oldestRunnableAgeMs,
    users: core.users,
    busiest_users: busiest,
    workers,
    rejections,
    models: models.map((m) => ({
      model: m.model,
      limits: {
        requests_per_minute: m.limits.requestsPerMinute,
        tokens_per_minute: m.limits.tokensPerMinute,
        max_concurrency: m.limits.maxConcurrency,
      },
      requests_this_minute: m.requestsThisMinute,
      tokens_this_minute: m.tokensThisMinute,
      in_flight: m.inFlight,
      cooldown_remaining_ms: m.cooldownRemainingMs,
    })),
  };
}

function ageOf(range: string[], now: number): number | null {
  const score = range[1];
  return score === undefined ? null : Math.max(0, now - Number(score));
}

async function busiestUsers(
  src: OverviewSources,
  top: number,
): Promise<QueueOverview["busiest_users"]> {
  const f = src.keys.fairPrefix;
  const [byQueued, byRunning] = await Promise.all([
    src.redis.zrange(`${f}backlog`, 0, top - 1, "REV"),
    src.redis.zrange(`${f}running`, 0, top - 1, "REV"),
  ]);
  const users = [...new Set([...byQueued, ...byRunning])];
  if (users.length === 0) return [];
  // The counters the scheduler keeps per user (absent = 0).
  const [queued, running] = await Promise.all([
    src.redis.zmscore(`${f}backlog`, ...users),
    src.redis.zmscore(`${f}running`, ...users),
  ]);
  const rows = users.map((userId, i) => {
    const limits = src.tiers.limitsOf(userId);
    return {
      user_id: userId,
      tier: limits.tier,
      weight: limits.weight,
      queued: Number(queued[i] ?? 0),
      running: Number(running[i] ?? 0),
    };
  });
  return rows.sort((a, b) => b.queued - a.queued || b.running - a.running).slice(0, top);
}
