/**
 * The event log on MongoDB: appending and reading a session's events over one collection per
 * time bucket (`events_<bucket>`, see event-collections.ts), the registry of buckets
 * (bucket-registry.ts) and a per-session bucket index (`session_buckets`) — the same layout and
 * rules as the SQLite adapter.
 *
 * Invariants:
 * - appends run without a transaction (a duplicate key would abort one, and this is the hot
 *   path), so each step is ordered to be safe if the process dies after it: the session index is
 *   widened BEFORE events are inserted (an entry may cover a seq not stored yet, never the
 *   reverse, so no stored event is unfindable), then events are inserted (duplicates ignored),
 *   then the bucket counter and the turns' `lastSeq` are updated; a re-sent batch inserts
 *   nothing twice and records a `lastSeq` an interrupted append left unrecorded;
 * - an event goes to the bucket of its `ts` unless that bucket is not `active`, then to the
 *   bucket of the moment of writing; the status is read just before inserting and checked again
 *   (atomically with the counter update) just after, and events inserted while their bucket left
 *   `active` are written again into the current bucket, so an archiver racing an append cannot
 *   take events away (reads merge a seq found in two buckets into one);
 * - reads open only the buckets the per-session index names for the range (readAcrossBuckets).
 */
import { isReadableStatus, readAcrossBuckets } from "../bucket-reads.js";
import { type BucketGranularity, bucketOf } from "../buckets.js";
import type { SessionBucket, StoredEvent } from "../ports/events.js";
import { eventFields, eventFromFields } from "../stored-shapes.js";
import type { BucketRegistry } from "./bucket-registry.js";
import type { SessionBucketDoc } from "./documents.js";
import { isDuplicateKeyError } from "./driver-errors.js";
import type { EventCollections } from "./event-collections.js";
import type { MongoModels } from "./models.js";

export class MongoEventBuckets {
  constructor(
    private readonly models: MongoModels,
    private readonly collections: EventCollections,
    private readonly registry: BucketRegistry,
    private readonly granularity: BucketGranularity,
  ) {}

  /** Appends `events`, each to its bucket (or the current one); returns how many were new. */
  async append(events: StoredEvent[], nowMs: number): Promise<number> {
    const targets = new Map<string, string>();
    const groups = new Map<string, StoredEvent[]>();
    for (const event of events) {
      const natural = bucketOf(event.ts, this.granularity);
      let target = targets.get(natural);
      if (target === undefined) {
        target = await this.writableBucket(natural, nowMs);
        targets.set(natural, target);
      }
      const group = groups.get(target);
      if (group === undefined) groups.set(target, [event]);
      else group.push(event);
    }
    let inserted = 0;
    for (const [bucket, group] of groups) {
      const stored = await this.writeInto(bucket, group);
      inserted += stored.size;
      if (!(await this.registry.countInto(bucket, stored.size, true))) {
        // The bucket left `active` while these were written: keep them in the current bucket too.
        await this.rescue(
          group.filter((event) => stored.has(event)),
          nowMs,
        );
      }
      await this.recordLastSeqs(bucket, group, stored);
    }
    return inserted;
  }

  /** Writes restored events into `bucket` only (its status is `restoring`); returns how many were new. */
  async restore(bucket: string, events: StoredEvent[]): Promise<number> {
    // Forced: another process may have dropped the collection since this one last wrote to it.
    await this.collections.ensure(bucket, true);
    const stored = await this.writeInto(bucket, events);
    await this.registry.countInto(bucket, stored.size, false);
    await this.recordLastSeqs(bucket, events, stored);
    return stored.size;
  }

  async read(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    if (limit <= 0) return [];
    return readAcrossBuckets(
      sessionId,
      await this.sessionBuckets(sessionId),
      afterSeq,
      limit,
      async (bucket, after, max) => {
        const docs = await this.collections
          .of(bucket)
          .find({ session_id: sessionId, seq: { $gt: after } }, { projection: { _id: 0 } })
          .sort({ seq: 1 })
          .limit(max)
          .toArray();
        return docs.map(eventFromFields);
      },
      async (bucket) => isReadableStatus((await this.registry.get(bucket))?.status),
    );
  }

  async maxSeq(sessionId: string): Promise<number> {
    const top = await this.models.sessionBuckets
      .findOne({ session_id: sessionId }, { last_seq: 1 })
      .sort({ last_seq: -1 })
      .lean<Pick<SessionBucketDoc, "last_seq">>();
    return top?.last_seq ?? 0;
  }

  /** The session's buckets by first seq, each with whether its events can be read now. */
  async sessionBuckets(sessionId: string): Promise<SessionBucket[]> {
    const rows = await this.models.sessionBuckets
      .find({ session_id: sessionId })
      .sort({ first_seq: 1, bucket: 1 })
      .lean<SessionBucketDoc[]>();
    if (rows.length === 0) return [];
    const statuses = await this.registry.statuses(rows.map((row) => row.bucket));
    // Like SQLite's join: an index entry whose bucket record is missing is left out.
    return rows.flatMap((row) => {
      const status = statuses.get(row.bucket);
      if (status === undefined) return [];
      return [
        {
          bucket: row.bucket,
          firstSeq: row.first_seq,
          lastSeq: row.last_seq,
          readable: isReadableStatus(status),
        },
      ];
    });
  }

  /** `natural` if it takes writes, else the bucket of `nowMs` (registered if need be). */
  private async writableBucket(natural: string, nowMs: number): Promise<string> {
    if ((await this.registry.statusOrCreate(natural, nowMs)) === "active") return natural;
    return this.currentBucket(nowMs);
  }

  private async currentBucket(nowMs: number): Promise<string> {
    const current = bucketOf(nowMs, this.granularity);
    if ((await this.registry.statusOrCreate(current, nowMs)) !== "active") {
      throw new Error(`event bucket ${current} (the current one) is not active; cannot append`);
    }
    return current;
  }

  /** Widens the session index, then inserts; returns the events that were new. */
  private async writeInto(bucket: string, events: StoredEvent[]): Promise<Set<StoredEvent>> {
    await this.indexSessions(bucket, events);
    const duplicates = await this.collections.insert(bucket, events.map(eventFields));
    return new Set(events.filter((_, i) => !duplicates.has(i)));
  }

  /** Writes events that landed in a bucket which left `active` into the current bucket. */
  private async rescue(events: StoredEvent[], nowMs: number): Promise<void> {
    const current = await this.currentBucket(nowMs);
    const stored = await this.writeInto(current, events);
    await this.registry.countInto(current, stored.size, false);
  }

  /** Per session of `events`: $min first_seq / $max last_seq of its (session, bucket) entry. */
  private async indexSessions(bucket: string, events: StoredEvent[]): Promise<void> {
    const ranges = new Map<string, { first: number; last: number }>();
    for (const { sessionId, seq } of events) {
      const range = ranges.get(sessionId);
      if (range === undefined) ranges.set(sessionId, { first: seq, last: seq });
      else
        ranges.set(sessionId, {
          first: Math.min(range.first, seq),
          last: Math.max(range.last, seq),
        });
    }
    const operations = [...ranges].map(([sessionId, range]) => ({
      updateOne: {
        filter: { _id: `${sessionId}:${bucket}` },
        update: {
          $setOnInsert: { session_id: sessionId, bucket },
          $min: { first_seq: range.first },
          $max: { last_seq: range.last },
        },
        upsert: true,
      },
    }));
    try {
      await this.models.sessionBuckets.bulkWrite(operations, { ordered: false });
    } catch (err) {
      // Concurrent first writers of one entry: the upserts are safe to repeat once it exists.
      if (!isDuplicateKeyError(err)) throw err;
      await this.models.sessionBuckets.bulkWrite(operations, { ordered: false });
    }
  }

  /**
   * Records `lastSeq` for each turn_terminal of `events` that is now stored: newly inserted, or
   * already stored as that very terminal (a re-send after an append died before this step).
   */
  private async recordLastSeqs(
    bucket: string,
    events: StoredEvent[],
    inserted: Set<StoredEvent>,
  ): Promise<void> {
    for (const event of events) {
      if (event.type !== "turn_terminal") continue;
      if (!inserted.has(event)) {
        const stored = await this.collections.of(bucket).findOne(
          {
            session_id: event.sessionId,
            seq: event.seq,
            type: "turn_terminal",
            turn_id: event.turnId,
          },
          { projection: { _id: 1 } },
        );
        if (stored === null) continue;
      }
      await this.models.turns.updateOne(
        { _id: event.turnId, last_seq: null },
        { $set: { last_seq: event.seq } },
      );
    }
  }
}
