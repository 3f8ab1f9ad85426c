/**
 * The retention rule: when a bucket is due for archiving.
 *
 * A bucket is due once it ended more than `retentionDays` ago — counted from its restore instead,
 * if it was restored, so a restored bucket stays readable for one more retention period. A bucket
 * left in `archiving` longer than STALLED_RUN_MS is taken to belong to a run that died, and is
 * due again. `retentionDays` 0 keeps everything forever.
 */
import type { BucketRecord } from "../ports/buckets.js";

const DAY_MS = 86_400_000;
/** An archive or restore run that has not finished in this long is taken over (its owner died). */
export const STALLED_RUN_MS = 3_600_000;

export function isStalledRun(bucket: BucketRecord, nowMs: number): boolean {
  return (
    (bucket.status === "archiving" || bucket.status === "restoring") &&
    bucket.updatedAt + STALLED_RUN_MS <= nowMs
  );
}

export function archiveBucketPastRetention(
  bucket: BucketRecord,
  retentionDays: number,
  nowMs: number,
): boolean {
  if (retentionDays === 0) return false;
  if (bucket.status === "archiving") return isStalledRun(bucket, nowMs);
  if (bucket.status !== "active") return false;
  const keptFrom = Math.max(bucket.endMs, bucket.restoredAt ?? 0);
  return keptFrom + retentionDays * DAY_MS <= nowMs;
}

/** When the bucket becomes due (null: never, under this retention). */
export function archiveDueAt(bucket: BucketRecord, retentionDays: number): number | null {
  if (retentionDays === 0 || bucket.status !== "active") return null;
  return Math.max(bucket.endMs, bucket.restoredAt ?? 0) + retentionDays * DAY_MS;
}
