/**
 * Reading one session's events across its buckets, shared by every adapter.
 *
 * Invariants:
 * - only buckets whose seq range reaches past `afterSeq` are opened, in order of their first seq,
 *   and the scan stops as soon as no further bucket can hold one of the `limit` lowest seqs;
 * - bucket ranges may overlap (events are bucketed by timestamp, and clocks of two workers can
 *   disagree by a little), so rows are merged by seq rather than concatenated; a seq found in
 *   two buckets (an append redirected after a re-send) is returned once;
 * - a read that reaches an unreadable bucket returns the events before it if there are any (a
 *   complete prefix), else fails with EventsArchivedError naming it and the unreadable buckets
 *   right after it, up to the next readable one — so `resume_after` never skips readable
 *   events, and the archived range is never silently left out;
 * - a bucket archived between the index lookup and its read is caught: a bucket the index says
 *   holds seqs in the range but that returns none is checked again (`stillReadable`).
 */
import { EventsArchivedError } from "./errors.js";
import type { SessionBucket, StoredEvent } from "./ports/events.js";

export type ReadBucket = (
  bucket: string,
  afterSeq: number,
  limit: number,
) => Promise<StoredEvent[]>;
export type StillReadable = (bucket: string) => Promise<boolean>;

export async function readAcrossBuckets(
  sessionId: string,
  buckets: SessionBucket[],
  afterSeq: number,
  limit: number,
  readBucket: ReadBucket,
  stillReadable: StillReadable,
): Promise<StoredEvent[]> {
  const candidates = buckets
    .filter((b) => b.lastSeq > afterSeq)
    .sort((a, b) => a.firstSeq - b.firstSeq);
  let merged: StoredEvent[] = [];
  for (const [i, bucket] of candidates.entries()) {
    if (merged.length >= limit && bucket.firstSeq > (merged[limit - 1] as StoredEvent).seq) break;
    const rows = bucket.readable ? await readBucket(bucket.bucket, afterSeq, limit) : [];
    if (!bucket.readable || (rows.length === 0 && !(await stillReadable(bucket.bucket)))) {
      // The events before the archived range are complete (later buckets start at or after it):
      // hand those out first; the next read, starting past them, gets the error.
      const before = merged.filter((e) => e.seq < bucket.firstSeq);
      if (before.length > 0) return before;
      throw archivedFrom(sessionId, candidates.slice(i), afterSeq);
    }
    merged = mergeBySeq(merged, rows, limit);
  }
  return merged;
}

/** The unreadable run of buckets starting at `run[0]`, up to the next readable one. */
function archivedFrom(
  sessionId: string,
  run: SessionBucket[],
  afterSeq: number,
): EventsArchivedError {
  const blocking: SessionBucket[] = [];
  for (const [i, bucket] of run.entries()) {
    if (i > 0 && bucket.readable) break;
    blocking.push(bucket);
  }
  return new EventsArchivedError(
    sessionId,
    blocking.map((b) => ({
      bucket: b.bucket,
      firstSeq: Math.max(b.firstSeq, afterSeq + 1),
      lastSeq: b.lastSeq,
    })),
  );
}

function mergeBySeq(a: StoredEvent[], b: StoredEvent[], limit: number): StoredEvent[] {
  if (a.length === 0) return b.slice(0, limit);
  const out: StoredEvent[] = [];
  let i = 0;
  let j = 0;
  while (out.length < limit && (i < a.length || j < b.length)) {
    const x = a[i];
    const y = b[j];
    if (y === undefined || (x !== undefined && x.seq <= y.seq)) {
      out.push(x as StoredEvent);
      i++;
      if (y !== undefined && y.seq === (x as StoredEvent).seq) j++;
    } else {
      out.push(y);
      j++;
    }
  }
  return out;
}

/** An `active` or `archiving` bucket still has its events; any other status (or none) has not. */
export function isReadableStatus(status: string | undefined): boolean {
  return status === "active" || status === "archiving";
}
