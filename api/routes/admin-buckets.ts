/**
 * /v1/admin/buckets: the event buckets, their retention, and archive / restore on demand.
 * Registered inside the admin router, behind its guard. Archive and restore run in the request
 * (they answer when the bucket reached its new status); the archiver process does the same on
 * its schedule.
 */
import type { Router } from "express";
import { BucketParamsSchema, bucketView } from "../../src/contract/buckets.js";
import { FarmError, fieldIssues, validationError } from "../../src/contract/errors.js";
import { ArchiveInvalidError } from "../../src/store/lifecycle/archive-file.js";
import {
  archiverSettingsOf,
  BucketArchiver,
  BucketLifecycleError,
} from "../../src/store/lifecycle/bucket-archiver.js";
import { archiveDueAt } from "../../src/store/lifecycle/retention.js";
import type { BucketRecord } from "../../src/store/port.js";
import type { ApiContext } from "../context.js";

const ACTOR = "admin";

export function registerBucketRoutes(router: Router, ctx: ApiContext): void {
  const settings = archiverSettingsOf(ctx.config);
  const archiver = new BucketArchiver(ctx.store, settings, ctx.logger);
  const view = (bucket: BucketRecord) =>
    bucketView(bucket, archiveDueAt(bucket, settings.retentionDays));

  router.get("/v1/admin/buckets", async (_req, res) => {
    const buckets = await ctx.store.listBuckets();
    res.json({ retention_days: settings.retentionDays, buckets: buckets.map(view) });
  });

  router.post("/v1/admin/buckets/:name/archive", async (req, res) => {
    const name = bucketName(req.params);
    res.json(view(await lifecycleStep(() => archiver.archive(name, ACTOR))));
  });

  router.post("/v1/admin/buckets/:name/restore", async (req, res) => {
    const name = bucketName(req.params);
    res.json(view(await lifecycleStep(() => archiver.restore(name, ACTOR))));
  });
}

function bucketName(params: unknown): string {
  const parsed = BucketParamsSchema.safeParse(params);
  if (!parsed.success) throw validationError(fieldIssues(parsed.error, "path"));
  return parsed.data.name;
}

async function lifecycleStep(step: () => Promise<BucketRecord>): Promise<BucketRecord> {
  try {
    return await step();
  } catch (err) {
    if (err instanceof BucketLifecycleError) {
      throw new FarmError(
        err.kind === "not_found" ? 404 : 409,
        err.kind === "not_found" ? "not_found" : "bucket_conflict",
        err.message,
      );
    }
    if (err instanceof ArchiveInvalidError) {
      throw new FarmError(500, "archive_invalid", err.message);
    }
    throw err;
  }
}
