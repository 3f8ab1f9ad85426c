/**
 * `scheduler-overhead`: what the fair scheduler costs per turn, at the scheduler layer, with no
 * HTTP, store or model in the way. In this process, on one Redis, with the same worker
 * concurrency:
 *
 * - fair: N no-op turns (many users, a fresh session each) are admitted with
 *   `scheduler.admission.admit` — a user FIFO + session order + a dispatch pass, as a submit
 *   does — by concurrent submitters on an "API" scheduler; a BullMQ Worker on a second,
 *   "worker" scheduler (its own connections, with its capacity announced by `WorkerCapacity`
 *   and the 500 ms dispatch tick, like a worker process) runs each job as a no-op and then does
 *   what a finished turn does for the scheduler: `releaseAndWakeNext` (session order, the
 *   user's running slot, a dispatch pass counting the slot being freed);
 * - plain: the same N jobs `add`ed straight to the same kind of queue (src/queue/turn-queue.ts,
 *   same job options) by the same number of concurrent submitters, no-op processor.
 *
 * Each is timed end to end, first admit/add → last job done; runs alternate, and the figures
 * are the medians. Target: fair ≥ 0.7 × plain. Also reported: the ratio to run.ts's baseline
 * (which times processing only, jobs added beforehand), and Redis and Node CPU per job.
 * Every key is under a private prefix that is deleted after each run.
 */
import { Worker } from "bullmq";
import type { Redis } from "ioredis";
import { ConfigSchema } from "../../src/config/schema.js";
import { createLogger, type Logger } from "../../src/obs/logger.js";
import { SessionLeases } from "../../src/queue/session-lease.js";
import { createTurnQueue, TURN_QUEUE_NAME, type TurnJobData } from "../../src/queue/turn-queue.js";
import { createRedis } from "../../src/redis/connection.js";
import { redisKeys } from "../../src/redis/keys.js";
import { buildScheduler } from "../../src/scheduler/scheduler.js";
import { WorkerCapacity } from "../../src/scheduler/worker-capacity.js";
import { releaseAndWakeNext } from "../../src/turn/turnover.js";
import { pooled } from "../farm-client.js";
import { redisCpuS } from "../process-cpu.js";
import { median, round } from "../stats.js";

export interface SchedulerOverheadOptions {
  jobs: number;
  users: number;
  concurrency: number;
  repeats: number;
  /** run.ts's plain BullMQ baseline of the same run (jobs added first, processing timed). */
  baselineJobsPerS: number;
}

/** Submitters in flight at once, like concurrent API requests. */
const SUBMITTERS = 256;
const RUN_TIMEOUT_MS = 120_000;
const DISPATCH_PREFETCH = ConfigSchema.parse({}).scheduler.dispatchPrefetch;

interface RunResult {
  jobs_per_s: number;
  seconds: number;
  submit_s: number;
  redis_cpu_ms_per_job: number;
  node_cpu_ms_per_job: number;
}

const turnOf = (i: number, users: number) => ({
  turnId: `turn-${i}`,
  sessionId: `session-${i}`,
  userId: `user-${i % users}`,
});

/** Counts finished jobs; `finished` resolves at the target, or rejects after RUN_TIMEOUT_MS. */
class Countdown {
  count = 0;
  readonly finished: Promise<void>;
  private resolve: () => void = () => {};

  constructor(private readonly target: number) {
    this.finished = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`only ${this.count} of ${target} jobs done in ${RUN_TIMEOUT_MS} ms`)),
        RUN_TIMEOUT_MS,
      );
      this.resolve = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    // A run that fails before anyone awaits `finished` must not become an unhandled rejection.
    this.finished.catch(() => undefined);
  }

  tick(): void {
    if (++this.count === this.target) this.resolve();
  }
}

async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}

/** Times `submit` (all jobs) + processing until every job is done. */
async function timed(
  redis: Redis,
  jobs: number,
  submit: () => Promise<void>,
  done: Countdown,
): Promise<RunResult> {
  const redisBefore = await redisCpuS(redis);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await submit();
  const submitS = (performance.now() - started) / 1000;
  await done.finished;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisS = (await redisCpuS(redis)) - redisBefore;
  return {
    jobs_per_s: round(jobs / seconds),
    seconds: round(seconds, 2),
    submit_s: round(submitS, 2),
    redis_cpu_ms_per_job: round((redisS * 1000) / jobs, 3),
    node_cpu_ms_per_job: round((cpu.user + cpu.system) / 1000 / jobs, 3),
  };
}

async function fairRun(
  redisUrl: string,
  options: SchedulerOverheadOptions,
  logger: Logger,
): Promise<RunResult> {
  const prefix = `bench-sched-${process.pid}-${Date.now().toString(36)}`;
  const config = ConfigSchema.parse({ redis: { url: redisUrl, prefix } });
  const keys = redisKeys(prefix);
  const connections: Redis[] = [];
  const connect = (role: "command" | "queue" | "blocking") => {
    const c = createRedis(redisUrl, role, logger);
    connections.push(c);
    return c;
  };
  // The API side admits; the worker side runs jobs and releases. Each has its own dispatcher
  // and connections, as two processes would.
  const apiRedis = connect("command");
  const api = buildScheduler({ config, redis: apiRedis, keys, logger });
  const workerRedis = connect("command");
  const workerSide = buildScheduler({ config, redis: workerRedis, keys, logger });
  const leases = new SessionLeases(workerRedis, keys, config.worker.sessionLeaseTtlMs);
  const turnover = { leases, fair: workerSide.fair, dispatcher: workerSide.dispatcher };

  const done = new Countdown(options.jobs);
  const worker = new Worker<TurnJobData>(
    TURN_QUEUE_NAME,
    async (job) => {
      const { turnId, sessionId, userId } = job.data;
      await releaseAndWakeNext(turnover, { id: turnId, sessionId, userId }, null, true);
      done.tick();
    },
    { connection: connect("blocking"), prefix: keys.bullPrefix, concurrency: options.concurrency },
  );
  await worker.waitUntilReady();
  const capacity = new WorkerCapacity(workerRedis, keys, options.concurrency, logger);
  await capacity.start();
  workerSide.dispatcher.startTicking(config.scheduler.dispatchTickMs);
  const ids = Array.from({ length: options.jobs }, (_, i) => i);
  try {
    const result = await timed(
      apiRedis,
      options.jobs,
      async () => {
        await pooled(ids, SUBMITTERS, async (i) => {
          const t = turnOf(i, options.users);
          await api.admission.admit({ id: t.turnId, sessionId: t.sessionId, userId: t.userId });
        });
      },
      done,
    );
    return {
      ...result,
    };
  } finally {
    await worker.close();
    await capacity.stop();
    await workerSide.dispatcher.stop();
    await api.dispatcher.stop();
    await deletePrefix(apiRedis, prefix);
    await Promise.all(connections.map((c) => c.quit().catch(() => c.disconnect())));
  }
}

async function plainRun(
  redisUrl: string,
  options: SchedulerOverheadOptions,
  logger: Logger,
): Promise<RunResult> {
  const prefix = `bench-plain-${process.pid}-${Date.now().toString(36)}`;
  const keys = redisKeys(prefix);
  const command = createRedis(redisUrl, "command", logger);
  const queueConnection = createRedis(redisUrl, "queue", logger);
  const workerConnection = createRedis(redisUrl, "blocking", logger);
  const queue = createTurnQueue(queueConnection, keys.bullPrefix);
  const done = new Countdown(options.jobs);
  const worker = new Worker<TurnJobData>(
    TURN_QUEUE_NAME,
    async () => {
      done.tick();
    },
    { connection: workerConnection, prefix: keys.bullPrefix, concurrency: options.concurrency },
  );
  await worker.waitUntilReady();
  const ids = Array.from({ length: options.jobs }, (_, i) => i);
  try {
    return await timed(
      command,
      options.jobs,
      async () => {
        await pooled(ids, SUBMITTERS, async (i) => {
          const data = turnOf(i, options.users);
          await queue.add("turn", data, { jobId: data.turnId });
        });
      },
      done,
    );
  } finally {
    await worker.close();
    await queue.close();
    await deletePrefix(command, prefix);
    await Promise.all(
      [command, queueConnection, workerConnection].map((c) => c.quit().catch(() => c.disconnect())),
    );
  }
}

export async function schedulerOverhead(
  redisUrl: string,
  options: SchedulerOverheadOptions,
  log: (line: string) => void,
) {
  const logger = createLogger("bench-scheduler", "warn");
  const fair: RunResult[] = [];
  const plain: RunResult[] = [];
  // A short unmeasured round of each first: script loading, JIT, connection set-up.
  const warm = { ...options, jobs: Math.min(2_000, options.jobs) };
  await plainRun(redisUrl, warm, logger);
  await fairRun(redisUrl, warm, logger);
  for (let i = 0; i < options.repeats; i++) {
    plain.push(await plainRun(redisUrl, options, logger));
    log(`scheduler-overhead: plain BullMQ ${plain[i]?.jobs_per_s} jobs/s`);
    fair.push(await fairRun(redisUrl, options, logger));
    log(`scheduler-overhead: fair scheduler ${fair[i]?.jobs_per_s} jobs/s`);
  }
  const med = (runs: RunResult[], key: keyof RunResult) =>
    median(runs.map((r) => r[key] ?? Number.NaN));
  const fairRate = med(fair, "jobs_per_s");
  const plainRate = med(plain, "jobs_per_s");
  return {
    jobs_per_run: options.jobs,
    users: options.users,
    concurrency: options.concurrency,
    submitters: SUBMITTERS,
    fair_jobs_per_s: fairRate,
    plain_bullmq_jobs_per_s: plainRate,
    ratio_fair_to_plain: round(fairRate / plainRate, 3),
    target_met: fairRate / plainRate >= 0.7,
    ratio_fair_to_baseline: round(fairRate / options.baselineJobsPerS, 3),
    baseline_target_met: fairRate / options.baselineJobsPerS >= 0.7,
    fair_runs_jobs_per_s: fair.map((r) => r.jobs_per_s),
    plain_runs_jobs_per_s: plain.map((r) => r.jobs_per_s),
    fair_submit_s: med(fair, "submit_s"),
    plain_submit_s: med(plain, "submit_s"),
    fair_redis_cpu_ms_per_job: med(fair, "redis_cpu_ms_per_job"),
    plain_redis_cpu_ms_per_job: med(plain, "redis_cpu_ms_per_job"),
    fair_node_cpu_ms_per_job: med(fair, "node_cpu_ms_per_job"),
    plain_node_cpu_ms_per_job: med(plain, "node_cpu_ms_per_job"),
    dispatch_window: options.concurrency + DISPATCH_PREFETCH,
  };
}
