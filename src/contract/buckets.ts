/**
 * Bodies of the event-bucket admin routes (`/v1/admin/buckets…`), and their OpenAPI part.
 */
import { z } from "zod";
import { BucketNameSchema } from "../store/buckets.js";
import { BUCKET_STATUSES, type BucketRecord } from "../store/ports/buckets.js";

const count = z.number().int().min(0);
const time = z.iso.datetime();

export const BucketParamsSchema = z.object({
  name: BucketNameSchema.describe("YYYYMMDD, YYYYwWW or YYYYMM"),
});

export const BucketViewSchema = z
  .object({
    name: z.string(),
    start: time,
    end: time.describe("exclusive"),
    status: z.enum(BUCKET_STATUSES),
    events: count.describe("events in the store (0 once archived)"),
    archive_due_at: time
      .nullable()
      .describe("when retention makes it due (null: never, or not active)"),
    restored_at: time.nullable(),
    archive: z
      .object({
        file: z.string(),
        manifest: z.string(),
        sha256: z.string(),
        events: count,
        archived_at: time,
      })
      .nullable(),
  })
  .meta({ id: "EventBucket" });
export type BucketView = z.infer<typeof BucketViewSchema>;

export const BucketListSchema = z
  .object({
    retention_days: count.describe("0 keeps buckets forever"),
    buckets: z.array(BucketViewSchema),
  })
  .meta({ id: "EventBucketList" });

export function bucketView(bucket: BucketRecord, archiveDueAtMs: number | null): BucketView {
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    name: bucket.name,
    start: iso(bucket.startMs),
    end: iso(bucket.endMs),
    status: bucket.status,
    events: bucket.events,
    archive_due_at: archiveDueAtMs === null ? null : iso(archiveDueAtMs),
    restored_at: bucket.restoredAt === null ? null : iso(bucket.restoredAt),
    archive: bucket.archive && {
      file: bucket.archive.file,
      manifest: bucket.archive.manifest,
      sha256: bucket.archive.sha256,
      events: bucket.archive.events,
      archived_at: iso(bucket.archive.archivedAt),
    },
  };
}
