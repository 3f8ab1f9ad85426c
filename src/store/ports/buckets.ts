/**
 * Port part: the event buckets as a whole — what the archiver and the admin routes see.
 *
 * A bucket moves through   active → archiving → archived → restoring → active.
 * Contract:
 * - every status change is a compare-and-set from the expected status: two archivers (or an
 *   archiver and an operator) racing on one bucket cannot both win;
 * - from the moment a bucket leaves `active`, no append writes into it (appends are redirected,
 *   see ./events.ts); an `archiving` bucket is still readable, `archived` and `restoring` are not;
 * - `completeArchive` drops the bucket's events and keeps the bucket record and the per-session
 *   bucket index, so reads of the archived range can say what is archived;
 * - `restoreEvents` is idempotent like `appendEvents`, but writes into the named bucket only.
 */
import type { StoredEvent } from "./events.js";

export const BUCKET_STATUSES = ["active", "archiving", "archived", "restoring"] as const;
export type BucketStatus = (typeof BUCKET_STATUSES)[number];

/** Where an archived bucket's export lives and what it held. */
export interface BucketArchive {
  /** File name of the compressed JSONL export, relative to the archive directory. */
  file: string;
  /** File name of its manifest, relative to the archive directory. */
  manifest: string;
  /** sha256 (hex) of the compressed export file. */
  sha256: string;
  events: number;
  archivedAt: number;
}

export interface BucketRecord {
  name: string;
  /** The time range the bucket covers: [startMs, endMs). */
  startMs: number;
  endMs: number;
  status: BucketStatus;
  /** Events stored in the bucket (0 once archived). */
  events: number;
  archive: BucketArchive | null;
  /** When the bucket was last restored; a restored bucket is kept one more retention period. */
  restoredAt: number | null;
  /** When the status last changed (a run stuck in `archiving`/`restoring` is told by its age). */
  updatedAt: number;
}

/** Export order inside one bucket: (sessionId, seq). */
export interface BucketCursor {
  sessionId: string;
  seq: number;
}

export interface BucketStore {
  /** Every bucket ever written, oldest first. */
  listBuckets(): Promise<BucketRecord[]>;
  getBucket(name: string): Promise<BucketRecord | null>;
  /** Moves `name` from `from` to `to`; returns the updated record, or null if it was not in `from`. */
  setBucketStatus(
    name: string,
    from: BucketStatus,
    to: BucketStatus,
    now: number,
  ): Promise<BucketRecord | null>;
  /** The bucket's events in (sessionId, seq) order after `after`, at most `limit`. */
  readBucketEvents(name: string, after: BucketCursor | null, limit: number): Promise<StoredEvent[]>;
  /** archiving → archived: drops the bucket's events and records where the export is. */
  completeArchive(name: string, archive: BucketArchive): Promise<BucketRecord | null>;
  /** Writes restored events into `name` (status `restoring`); returns how many were new. */
  restoreEvents(name: string, events: StoredEvent[]): Promise<number>;
}
