/**
 * `npm run store -- <command>`: the event-bucket lifecycle from a shell, on the store the
 * environment configures (same settings as every farm process). Prints JSON.
 *
 *   buckets              list buckets with status, events and retention due dates
 *   archive <bucket>     archive one closed bucket now (export, verify, drop)
 *   archive-due          archive every bucket past retention (what the archiver does)
 *   restore <bucket>     restore an archived bucket from its archive
 */

import { ConfigError, loadConfig } from "../src/config/load.js";
import { bucketView } from "../src/contract/buckets.js";
import { createLogger, logSettingsOf } from "../src/obs/logger.js";
import { BucketNameSchema } from "../src/store/buckets.js";
import { archiverSettingsOf, BucketArchiver } from "../src/store/lifecycle/bucket-archiver.js";
import { archiveDueAt } from "../src/store/lifecycle/retention.js";
import { openStore } from "../src/store/open.js";

const USAGE = "usage: npm run store -- buckets | archive <bucket> | archive-due | restore <bucket>";
const ACTOR = "cli";

async function main(args: string[]): Promise<unknown> {
  const [command, name] = args;
  const config = loadConfig();
  const settings = archiverSettingsOf(config);
  const store = await openStore(config);
  const archiver = new BucketArchiver(
    store,
    settings,
    createLogger("store-admin", logSettingsOf(config)),
  );
  const view = (b: Parameters<typeof bucketView>[0]) =>
    bucketView(b, archiveDueAt(b, settings.retentionDays));
  const bucketArg = () => {
    const parsed = BucketNameSchema.safeParse(name);
    if (!parsed.success)
      throw new UsageError(
        `${JSON.stringify(name)} is not a bucket name (YYYYMMDD, YYYYwWW, YYYYMM)`,
      );
    return parsed.data;
  };
  try {
    switch (command) {
      case "buckets":
        return {
          retention_days: settings.retentionDays,
          buckets: (await store.listBuckets()).map(view),
        };
      case "archive":
        return view(await archiver.archive(bucketArg(), ACTOR));
      case "archive-due":
        return { archived: await archiver.archiveDue(Date.now()) };
      case "restore":
        return view(await archiver.restore(bucketArg(), ACTOR));
      default:
        throw new UsageError(USAGE);
    }
  } finally {
    await store.close();
  }
}

class UsageError extends Error {}

try {
  process.stdout.write(`${JSON.stringify(await main(process.argv.slice(2)), null, 2)}\n`);
} catch (err) {
  const known = err instanceof UsageError || err instanceof ConfigError;
  process.stderr.write(
    `store: ${known ? (err as Error).message : String((err as Error).stack ?? err)}\n`,
  );
  process.exit(known ? 2 : 1);
}
