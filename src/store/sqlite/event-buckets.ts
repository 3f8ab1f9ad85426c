/**
 * The event log on SQLite: one table per time bucket (`events_<bucket>`), a registry of buckets
 * (`event_buckets`) and a per-session bucket index (`session_buckets`).
 *
 * Invariants:
 * - one table per bucket, like MongoDB's one collection per bucket: archiving drops a table (no
 *   slow DELETE, no index bloat), and both adapters share one layout and one set of rules;
 * - an append writes events, the session index and the bucket counters in the caller's IMMEDIATE
 *   transaction, so they never disagree; the target bucket's status is read inside that same
 *   transaction, so an append and an archiver's status change are strictly ordered;
 * - statements are prepared once per bucket table and connection; a table dropped by another
 *   process is never written again (its bucket left `active` first);
 * - bucket tables are rowid tables with UNIQUE (session_id, seq), not WITHOUT ROWID: envelopes
 *   are a few hundred bytes, and keeping them out of the key b-tree makes batched inserts about
 *   1.7× faster (measured: 132k vs 75k events/s in 4,000-event transactions).
 */
import type Database from "better-sqlite3";
import { isReadableStatus, readAcrossBuckets } from "../bucket-reads.js";
import { type BucketGranularity, bucketOf, bucketRange, bucketTable } from "../buckets.js";

const DAY_MS = 86_400_000;

import type { BucketArchive, BucketCursor, BucketRecord, BucketStatus } from "../ports/buckets.js";
import type { SessionBucket, StoredEvent } from "../ports/events.js";
import { type EventFields, eventFromFields } from "../stored-shapes.js";
import { type BucketRow, bucketFromRow } from "./rows.js";

interface BucketStatements {
  insert: Database.Statement<[string, number, string, string, number, string]>;
  read: Database.Statement<[string, number, number], EventFields>;
  exportAfter: Database.Statement<[string, string, number, number], EventFields>;
}

export class SqliteEventBuckets {
  private readonly byBucket = new Map<string, BucketStatements>();
  private readonly sql;

  constructor(
    private readonly db: Database.Database,
    private readonly granularity: BucketGranularity,
  ) {
    this.sql = {
      getBucket: db.prepare<[string], BucketRow>("SELECT * FROM event_buckets WHERE name = ?"),
      listBuckets: db.prepare<[], BucketRow>("SELECT * FROM event_buckets ORDER BY start_ms, name"),
      insertBucket: db.prepare<[string, number, number, number]>(
        `INSERT INTO event_buckets (name, start_ms, end_ms, status, events, updated_at)
         VALUES (?, ?, ?, 'active', 0, ?)`,
      ),
      countInto: db.prepare<[number, string]>(
        "UPDATE event_buckets SET events = events + ? WHERE name = ?",
      ),
      /** `restoring → active` stamps `restored_at` (the old row's status is what CASE sees). */
      setStatus: db.prepare<{ name: string; from: string; to: string; now: number }, BucketRow>(
        `UPDATE event_buckets SET status = @to, updated_at = @now,
                restored_at = CASE WHEN status = 'restoring' AND @to = 'active'
                                   THEN @now ELSE restored_at END
          WHERE name = @name AND status = @from RETURNING *`,
      ),
      archived: db.prepare<[string, number, string], BucketRow>(
        `UPDATE event_buckets SET status = 'archived', events = 0, archive = ?, updated_at = ?
          WHERE name = ? AND status = 'archiving' RETURNING *`,
      ),
      upsertSessionBucket: db.prepare<[string, string, number, number]>(
        `INSERT INTO session_buckets (session_id, bucket, first_seq, last_seq) VALUES (?, ?, ?, ?)
         ON CONFLICT (session_id, bucket) DO UPDATE
            SET first_seq = MIN(first_seq, excluded.first_seq),
                last_seq = MAX(last_seq, excluded.last_seq)`,
      ),
      sessionBuckets: db.prepare<[string], SessionBucketRow>(
        `SELECT sb.bucket, sb.first_seq, sb.last_seq, b.status
           FROM session_buckets sb JOIN event_buckets b ON b.name = sb.bucket
          WHERE sb.session_id = ? ORDER BY sb.first_seq`,
      ),
      maxSeq: db
        .prepare<[string], number>(
          "SELECT COALESCE(MAX(last_seq), 0) FROM session_buckets WHERE session_id = ?",
        )
        .pluck(),
      setTurnLastSeq: db.prepare<[number, string]>(
        "UPDATE turns SET last_seq = ? WHERE id = ? AND last_seq IS NULL",
      ),
    };
  }

  /** Body of an append transaction: returns how many events were new. */
  appendIn(events: StoredEvent[], nowMs: number): number {
    const targets = new Map<number, string>();
    const batch = new BatchTally();
    for (const event of events) {
      // A bucket depends only on the event's UTC day, whatever the granularity.
      const day = Math.floor(event.ts / DAY_MS);
      let bucket = targets.get(day);
      if (bucket === undefined) {
        bucket = this.writableBucket(bucketOf(event.ts, this.granularity), nowMs);
        targets.set(day, bucket);
      }
      batch.add(bucket, event, this.insert(bucket, event));
    }
    return this.settle(batch);
  }

  /** Body of a restore transaction: writes into `bucket` only (its status is `restoring`). */
  restoreIn(bucket: string, events: StoredEvent[]): number {
    this.ensureTable(bucket);
    const batch = new BatchTally();
    for (const event of events) batch.add(bucket, event, this.insert(bucket, event));
    return this.settle(batch);
  }

  async read(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    return readAcrossBuckets(
      sessionId,
      this.sessionBuckets(sessionId),
      afterSeq,
      limit,
      async (bucket, after, max) => {
        try {
          return this.statementsOf(bucket).read.all(sessionId, after, max).map(eventFromFields);
        } catch (err) {
          // Dropped by an archive that completed after the index was read: report no rows, and
          // let the status check say it is archived.
          if (isNoSuchTable(err)) return [];
          throw err;
        }
      },
      async (bucket) => isReadableStatus(this.getBucket(bucket)?.status),
    );
  }

  maxSeq(sessionId: string): number {
    return this.sql.maxSeq.get(sessionId) ?? 0;
  }

  sessionBuckets(sessionId: string): SessionBucket[] {
    return this.sql.sessionBuckets.all(sessionId).map((row) => ({
      bucket: row.bucket,
      firstSeq: row.first_seq,
      lastSeq: row.last_seq,
      readable: isReadableStatus(row.status),
    }));
  }

  listBuckets(): BucketRecord[] {
    return this.sql.listBuckets.all().map(bucketFromRow);
  }

  getBucket(name: string): BucketRecord | null {
    const row = this.sql.getBucket.get(name);
    return row === undefined ? null : bucketFromRow(row);
  }

  setStatus(
    name: string,
    from: BucketStatus,
    to: BucketStatus,
    nowMs: number,
  ): BucketRecord | null {
    if (to === "restoring") this.ensureTable(name);
    const row = this.sql.setStatus.get({ name, from, to, now: nowMs });
    return row === undefined ? null : bucketFromRow(row);
  }

  readBucket(name: string, after: BucketCursor | null, limit: number): StoredEvent[] {
    return this.statementsOf(name)
      .exportAfter.all(after?.sessionId ?? "", after?.sessionId ?? "", after?.seq ?? 0, limit)
      .map(eventFromFields);
  }

  /** Body of the archive-completing transaction. */
  completeArchiveIn(name: string, archive: BucketArchive): BucketRecord | null {
    const row = this.sql.archived.get(JSON.stringify(archive), archive.archivedAt, name);
    if (row === undefined) return null;
    this.db.exec(`DROP TABLE IF EXISTS ${bucketTable(name)}`);
    this.byBucket.delete(name);
    return bucketFromRow(row);
  }

  /** `natural` if it takes writes, else the bucket of `nowMs` (created if need be). */
  private writableBucket(natural: string, nowMs: number): string {
    const status = this.statusOrCreate(natural);
    if (status === "active") return natural;
    const current = bucketOf(nowMs, this.granularity);
    if (this.statusOrCreate(current) !== "active") {
      throw new Error(`event bucket ${current} (the current one) is not active; cannot append`);
    }
    return current;
  }

  private statusOrCreate(name: string): BucketStatus {
    const row = this.sql.getBucket.get(name);
    if (row !== undefined) return row.status as BucketStatus;
    const { startMs, endMs } = bucketRange(name);
    this.sql.insertBucket.run(name, startMs, endMs, Date.now());
    this.ensureTable(name);
    return "active";
  }

  private insert(bucket: string, event: StoredEvent): boolean {
    return (
      this.statementsOf(bucket).insert.run(
        event.sessionId,
        event.seq,
        event.turnId,
        event.type,
        event.ts,
        event.envelope,
      ).changes > 0
    );
  }

  /**
   * Writes what a batch changes besides the events: one index row per (session, bucket), one
   * counter update per bucket. The index is kept even for duplicates: harmless, and it repairs
   * nothing a re-sent batch could have broken.
   */
  private settle(batch: BatchTally): number {
    for (const range of batch.ranges.values()) {
      this.sql.upsertSessionBucket.run(
        range.sessionId,
        range.bucket,
        range.firstSeq,
        range.lastSeq,
      );
    }
    let inserted = 0;
    for (const [bucket, count] of batch.inserted) {
      this.sql.countInto.run(count, bucket);
      inserted += count;
    }
    for (const event of batch.terminals) this.sql.setTurnLastSeq.run(event.seq, event.turnId);
    return inserted;
  }

  private ensureTable(name: string): void {
    // Only a valid bucket name ever reaches SQL text (bucketRange throws on anything else).
    bucketRange(name);
    const table = bucketTable(name);
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS ${table} (
         session_id TEXT NOT NULL,
         seq        INTEGER NOT NULL,
         turn_id    TEXT NOT NULL,
         type       TEXT NOT NULL,
         ts         INTEGER NOT NULL,
         envelope   TEXT NOT NULL,
         UNIQUE (session_id, seq)
       );
       CREATE INDEX IF NOT EXISTS ${table}_turn_seq ON ${table}(turn_id, seq);`,
    );
  }

  private statementsOf(bucket: string): BucketStatements {
    let statements = this.byBucket.get(bucket);
    if (statements === undefined) {
      // Bucket names are validated by bucketRange before any table is made: safe to interpolate.
      bucketRange(bucket);
      const table = bucketTable(bucket);
      statements = {
        insert: this.db.prepare<[string, number, string, string, number, string]>(
          `INSERT OR IGNORE INTO ${table} (session_id, seq, turn_id, type, ts, envelope)
           VALUES (?, ?, ?, ?, ?, ?)`,
        ),
        read: this.db.prepare<[string, number, number], EventFields>(
          `SELECT * FROM ${table} WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
        ),
        exportAfter: this.db.prepare<[string, string, number, number], EventFields>(
          `SELECT * FROM ${table} WHERE session_id > ? OR (session_id = ? AND seq > ?)
            ORDER BY session_id, seq LIMIT ?`,
        ),
      };
      this.byBucket.set(bucket, statements);
    }
    return statements;
  }
}

/** What one append or restore batch touched: seq ranges per (session, bucket), new events per bucket. */
class BatchTally {
  readonly ranges = new Map<
    string,
    { sessionId: string; bucket: string; firstSeq: number; lastSeq: number }
  >();
  readonly inserted = new Map<string, number>();
  readonly terminals: StoredEvent[] = [];

  add(bucket: string, event: StoredEvent, inserted: boolean): void {
    const key = `${event.sessionId}\u0000${bucket}`;
    const range = this.ranges.get(key);
    if (range === undefined) {
      this.ranges.set(key, {
        sessionId: event.sessionId,
        bucket,
        firstSeq: event.seq,
        lastSeq: event.seq,
      });
    } else {
      if (event.seq < range.firstSeq) range.firstSeq = event.seq;
      if (event.seq > range.lastSeq) range.lastSeq = event.seq;
    }
    if (!inserted) return;
    this.inserted.set(bucket, (this.inserted.get(bucket) ?? 0) + 1);
    if (event.type === "turn_terminal") this.terminals.push(event);
  }
}

interface SessionBucketRow {
  bucket: string;
  first_seq: number;
  last_seq: number;
  status: string;
}

function isNoSuchTable(err: unknown): boolean {
  return err instanceof Error && /no such table/.test(err.message);
}
