/**
 * The archiver role: every `store.archiveIntervalMs`, archives the event buckets past retention
 * (see src/store/lifecycle). One pass at a time; a pass in progress finishes before stop returns.
 */
import type { FarmConfig } from "../config/schema.js";
import type { Logger } from "../obs/logger.js";
import { archiverSettingsOf, BucketArchiver } from "../store/lifecycle/bucket-archiver.js";
import { openStore } from "../store/open.js";

export async function startArchiver(
  config: FarmConfig,
  logger: Logger,
): Promise<{ stop(): Promise<void> }> {
  const store = await openStore(config);
  const settings = archiverSettingsOf(config);
  const archiver = new BucketArchiver(store, settings, logger);
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
  });
  return {
    async stop() {
      clearInterval(timer);
      await pass;
      await store.close();
    },
  };
}
