/**
 * The event persister role: drains the persist stream into the store until stopped, and serves
 * its own `/metrics` (events persisted, Node process metrics) on `PERSISTER_METRICS_PORT`.
 */
import type { FarmConfig } from "../config/schema.js";
import { EventPersister } from "../events/persister.js";
import { type Logger, moduleLogger } from "../obs/logger.js";
import { startMetricsServer } from "../obs/metrics-server.js";
import { createRedis } from "../redis/connection.js";
import { redisKeys } from "../redis/keys.js";
import { openStore } from "../store/open.js";

export interface RunningPersister {
  persister: EventPersister;
  metricsPort: number;
  stop(): Promise<void>;
}

export async function startPersister(
  config: FarmConfig,
  logger: Logger,
): Promise<RunningPersister> {
  const store = await openStore(config);
  // XREADGROUP blocks, so the persister gets a connection of its own that waits out outages.
  const redis = createRedis(config.redis.url, "blocking", logger);
  const persister = new EventPersister(
    redis,
    redisKeys(config.redis.prefix),
    store,
    config.events.persistBatchSize,
    moduleLogger(logger, "events"),
    config.events.persistBacklogWarnEntries,
  );
  await persister.start();
  const metrics = await startMetricsServer(config.events.persisterMetricsPort, config.api.host);
  logger.info("event persister started", {
    batch_size: config.events.persistBatchSize,
    metrics_port: metrics.port,
  });
  return {
    persister,
    metricsPort: metrics.port,
    async stop() {
      await metrics.close();
      await persister.stop();
      await redis.quit().catch(() => redis.disconnect());
      await store.close();
    },
  };
}
