/**
 * The turn worker role: a BullMQ worker that runs turns with bounded concurrency, plus the
 * reconciler, and a graceful stop.
 *
 * Stop (SIGTERM): no new jobs are taken; running turns get `shutdownGraceMs` to finish, then the
 * rest are handed back to the queue (lease kept in place, job moved to wait) and resume on
 * another worker from their event log.
 */
import { Worker } from "bullmq";
import type { FarmConfig } from "../config/schema.js";
import { TokenCalibration } from "../context/token-calibration.js";
import { ModelClients } from "../llm/chat-stream.js";
import { ModelBudget } from "../llm/model-budget.js";
import { type Logger, moduleLogger } from "../obs/logger.js";
import { startMetricsServer } from "../obs/metrics-server.js";
import { startTracing } from "../obs/tracing.js";
import { CancelListener } from "../queue/cancel-signals.js";
import { Reconciler } from "../queue/reconciler.js";
import { SessionLeases } from "../queue/session-lease.js";
import { createTurnQueue, TURN_QUEUE_NAME, type TurnJobData } from "../queue/turn-queue.js";
import { registerWorkerMetrics, workerMetrics } from "../queue/worker-metrics.js";
import { createRedis } from "../redis/connection.js";
import { buildScheduler } from "../scheduler/scheduler.js";
import { SchedulerRepair } from "../scheduler/scheduler-repair.js";
import { WorkerCapacity } from "../scheduler/worker-capacity.js";
import { isTerminal, type TurnRecord } from "../store/port.js";
import { startWorkerTools } from "../tools/worker-tools.js";
import type { TurnServices } from "../turn/services.js";
import { TurnJobRunner } from "../turn/turn-job.js";
import { closeOutEnded, endTurnOutsideRun, releaseAndWakeNext } from "../turn/turnover.js";
import { buildFoundation, closeFoundation } from "./foundation.js";

export interface RunningWorker {
  worker: Worker<TurnJobData>;
  runner: TurnJobRunner;
  reconciler: Reconciler;
  /** Stops taking jobs, waits up to the grace period, hands back the rest, closes everything. */
  stop(graceMs?: number): Promise<void>;
}

export async function startTurnWorker(config: FarmConfig, logger: Logger): Promise<RunningWorker> {
  const foundation = await buildFoundation(config, logger);
  const { keys } = foundation;
  const subscriber = createRedis(config.redis.url, "subscriber", logger);
  const cancels = new CancelListener(subscriber, keys);
  await cancels.start();
  const queueConnection = createRedis(config.redis.url, "queue", logger);
  const queue = createTurnQueue(queueConnection, keys.bullPrefix);
  const leases = new SessionLeases(foundation.redis, keys, config.worker.sessionLeaseTtlMs);
  const clients = new ModelClients(config.models);
  const scheduler = buildScheduler(foundation);
  const tools = await startWorkerTools(
    config,
    foundation.redis,
    subscriber,
    keys,
    moduleLogger(logger, "tools"),
  );
  const tracing = startTracing(config.tracing, "worker");
  const services: TurnServices = {
    ...foundation,
    logger: moduleLogger(logger, "turn"),
    tracer: tracing.tracer,
    leases,
    cancels,
    queue,
    fair: scheduler.fair,
    dispatcher: scheduler.dispatcher,
    clients,
    budget: new ModelBudget(foundation.redis, config.redis.prefix, config.models),
    tools: tools.registry,
    toolPolicies: tools.policies,
    calibration: new TokenCalibration(),
  };
  const runner = new TurnJobRunner(services);
  const failTurn = (turn: TurnRecord, reason: string) => failForGood(services, turn, reason);

  const workerConnection = createRedis(config.redis.url, "blocking", logger);
  const worker = new Worker<TurnJobData>(
    TURN_QUEUE_NAME,
    (job, token) => runner.process(job, token ?? ""),
    {
      connection: workerConnection,
      prefix: keys.bullPrefix,
      concurrency: config.worker.concurrency,
      lockDuration: config.worker.lockDurationMs,
      stalledInterval: config.worker.stalledIntervalMs,
      maxStalledCount: config.worker.maxStalledCount,
    },
  );
  worker.on("error", (err) => logger.warn("worker error", { error: err.message }));
  worker.on("stalled", (jobId) => {
    workerMetrics.stalled();
    logger.warn("turn job stalled", { turn_id: jobId });
  });
  registerWorkerMetrics(() => runner.activeTurns, config.worker.concurrency);
  worker.on("failed", (job, err) => {
    if (!job) return;
    const final =
      job.attemptsMade >= (job.opts.attempts ?? 1) || /stalled more than/.test(err.message);
    logger.warn("turn job failed", {
      turn_id: job.id,
      error: err.message,
      final,
      attempts: job.attemptsMade,
    });
    if (!final) return;
    services.store
      .getTurn(job.data.turnId)
      .then((turn) => (turn ? failTurn(turn, err.message) : undefined))
      .catch((e: Error) =>
        logger.error("could not end a failed turn", { turn_id: job.id, error: e.message }),
      );
  });

  const schedulerRepair = new SchedulerRepair(
    foundation.store,
    scheduler.fair,
    scheduler.dispatcher,
    {
      closeOut: (turn) => closeOutEnded(services, turn, null),
      drop: (turn) => releaseAndWakeNext(services, turn, null),
    },
    moduleLogger(logger, "queue"),
    config.worker.reconcileMinAgeMs,
  );
  const reconciler = new Reconciler(
    {
      redis: foundation.redis,
      store: foundation.store,
      queue,
      admission: scheduler.admission,
      fair: scheduler.fair,
      schedulerRepair,
      failTurn,
      logger: moduleLogger(logger, "queue"),
    },
    {
      intervalMs: config.worker.reconcileIntervalMs,
      minAgeMs: config.worker.reconcileMinAgeMs,
      lockKey: `${config.redis.prefix}:reconciler`,
    },
  );
  reconciler.start();
  await worker.waitUntilReady();
  const capacity = new WorkerCapacity(foundation.redis, keys, config.worker.concurrency, logger);
  await capacity.start();
  scheduler.dispatcher.startTicking(config.scheduler.dispatchTickMs);
  await scheduler.dispatcher.kick();
  const metrics = await startMetricsServer(config.worker.metricsPort, config.api.host);
  logger.info("turn worker started", {
    concurrency: config.worker.concurrency,
    metrics_port: metrics.port,
  });

  return {
    worker,
    runner,
    reconciler,
    async stop(graceMs = config.worker.shutdownGraceMs) {
      await reconciler.stop();
      await capacity.stop();
      await scheduler.dispatcher.stop();
      await metrics.close();
      const closing = worker.close();
      const handBack = setTimeout(() => runner.handBackAll(), graceMs);
      await closing;
      clearTimeout(handBack);
      await queue.close();
      await clients.close();
      await tools.close();
      // After the last turn ended, so its spans are in the final export.
      await tracing
        .shutdown()
        .catch((err: Error) =>
          logger.warn("exporting the last spans failed", { error: err.message }),
        );
      await Promise.all(
        [subscriber, queueConnection, workerConnection].map((c) =>
          c.quit().catch(() => c.disconnect()),
        ),
      );
      await closeFoundation(foundation);
      logger.info("turn worker stopped");
    },
  };
}

/** Ends a turn whose job can no longer run (the last resort after BullMQ gave up on it). */
async function failForGood(
  services: TurnServices,
  turn: TurnRecord,
  reason: string,
): Promise<void> {
  const latest = await services.store.getTurn(turn.id);
  if (!latest) return;
  // The last attempt stored the outcome but died before releasing: finish that now.
  if (isTerminal(latest.status)) return closeOutEnded(services, latest, null);
  await endTurnOutsideRun(services, latest, "failed", {
    code: "worker_failure",
    message: `the turn could not be run: ${reason}`,
    retryable: true,
  });
}
