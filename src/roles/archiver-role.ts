/**
 * The archiver role: every `store.archiveIntervalMs`, archives the event buckets past retention
 * (see src/store/lifecycle), and serves its own `/metrics` on `ARCHIVER_METRICS_PORT`. One pass
 * at a time; a pass in progress finishes before stop returns.
 */
import type { FarmConfig } from "../config/schema.js";
import { type Logger, moduleLogger } from "../obs/logger.js";
import { startMetricsServer } from "../obs/metrics-server.js";
import { archiverSettingsOf, BucketArchiver } from "../store/lifecycle/bucket-archiver.js";
import { openStore } from "../store/open.js";

export interface RunningArchiver {
  metricsPort: number;
  stop(): Promise<void>;
}

export async function startArchiver(config: FarmConfig, logger: Logger): Promise<RunningArchiver> {
  const store = await openStore(config);
  const settings = archiverSettingsOf(config);
  const archiver = new BucketArchiver(store, settings, moduleLogger(logger, "store"));
  const metrics = await startMetricsServer(config.store.archiverMetricsPort, config.api.host).catch(
    async (err: Error) => {
      await store.close();
      throw err;
    },
  );
  let pass: Promise<void> = Promise.resolve();
  const runPass = () => {
    pass = archiver
      .archiveDue(Date.now())
      .then((archived) => {
        if (archived.length > 0) logger.info("archive pass done", { archived });
      })
      .catch((err: Error) => {
        logger.error("archive pass failed", { error: err.message });
      });
  };
  runPass();
  const timer = setInterval(() => {
    pass.then(runPass);
  }, config.store.archiveIntervalMs);
  logger.info("archiver started", {
    retention_days: settings.retentionDays,
    archive_dir: settings.archiveDir,
    interval_ms: config.store.archiveIntervalMs,
    metrics_port: metrics.port,
  });
  return {
    metricsPort: metrics.port,
    async stop() {
      clearInterval(timer);
      await metrics.close();
      await pass;
      await store.close();
    },
  };
}
