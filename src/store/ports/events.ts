/**
 * Port part: the durable event log, kept in time buckets.
 *
 * Contract:
 * - an event lives in the bucket of its `ts` (see ../buckets.ts), unless that bucket is no longer
 *   active (being archived, archived or being restored): then it goes to the bucket of the
 *   moment it is written, so a bucket past retention is never written again;
 * - `appendEvents` is idempotent on (sessionId, seq): a re-sent batch inserts nothing twice and
 *   the first write wins; storing a `turn_terminal` event also records the turn's `lastSeq`;
 * - every append also records, per session, which buckets hold its events and their seq range,
 *   so `readEvents` opens only the buckets a range needs;
 * - `readEvents` returns events in ascending seq order, each seq once; if the range it has to
 *   read touches a bucket that is not readable (archived or being restored) it throws
 *   `EventsArchivedError` instead of answering with a shorter list.
 */

/** One persisted event: the envelope exactly as it was emitted, plus the columns it is found by. */
export interface StoredEvent {
  sessionId: string;
  seq: number;
  turnId: string;
  type: string;
  ts: number;
  /** The envelope JSON, byte for byte what live readers received. */
  envelope: string;
}

/** Where a session's events are: one row per (session, bucket). */
export interface SessionBucket {
  bucket: string;
  firstSeq: number;
  lastSeq: number;
  /** False while the bucket is archived or being restored: its events cannot be read. */
  readable: boolean;
}

export interface EventStore {
  appendEvents(events: StoredEvent[]): Promise<number>;
  /** Events with seq > afterSeq, ascending, at most `limit`. Throws EventsArchivedError (see above). */
  readEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]>;
  /** Highest stored seq of the session, 0 when none; archived events count. */
  maxSeq(sessionId: string): Promise<number>;
  /** The session's buckets in ascending order of their first seq. */
  listSessionBuckets(sessionId: string): Promise<SessionBucket[]>;
}
