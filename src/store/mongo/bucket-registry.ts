/**
 * The registry of event buckets on MongoDB (`event_buckets`) and the bucket lifecycle the
 * archiver drives: registering buckets, status changes, event counters, export reads and
 * completing an archive.
 *
 * Invariants:
 * - every status change is a compare-and-set (`findOneAndUpdate` on `{_id, status: from}`), so
 *   two archivers (or an archiver and an operator) racing on one bucket cannot both win;
 *   `restoring → active` stamps `restored_at`;
 * - a bucket is registered `active` by the first append that needs it (an upsert that only sets
 *   fields on insert, so a racing registration never resets a record);
 * - `completeArchive` marks the bucket archived first and drops its collection second: a failure
 *   in between leaves events no one can read (a retry of the same archive drops them), never
 *   a dropped collection under a bucket that is not archived.
 */
import { BucketNameSchema, bucketRange } from "../buckets.js";
import type { BucketArchive, BucketCursor, BucketRecord, BucketStatus } from "../ports/buckets.js";
import type { StoredEvent } from "../ports/events.js";
import { eventFromFields } from "../stored-shapes.js";
import { type BucketDoc, bucketFromDoc } from "./documents.js";
import { isDuplicateKeyError } from "./driver-errors.js";
import type { EventCollections } from "./event-collections.js";
import type { MongoModels } from "./models.js";

/** Statuses in which a bucket still holds its events (so it may be counted into). */
const HOLDING_STATUSES: BucketStatus[] = ["active", "archiving"];

export class BucketRegistry {
  constructor(
    private readonly models: MongoModels,
    private readonly collections: EventCollections,
  ) {}

  async list(): Promise<BucketRecord[]> {
    const docs = await this.models.buckets.find().sort({ start_ms: 1, _id: 1 }).lean<BucketDoc[]>();
    return docs.map(bucketFromDoc);
  }

  async get(name: string): Promise<BucketRecord | null> {
    const doc = await this.models.buckets.findById(name).lean<BucketDoc>();
    return doc === null ? null : bucketFromDoc(doc);
  }

  /** The status of each named bucket that has a record. */
  async statuses(names: string[]): Promise<Map<string, string>> {
    const docs = await this.models.buckets
      .find({ _id: { $in: names } }, { status: 1 })
      .lean<Pick<BucketDoc, "_id" | "status">[]>();
    return new Map(docs.map((doc) => [doc._id, doc.status]));
  }

  /** The bucket's status, registering it as a new active bucket when unknown. */
  async statusOrCreate(name: string, nowMs: number, retried = false): Promise<string> {
    const { startMs, endMs } = bucketRange(name);
    try {
      const doc = await this.models.buckets
        .findOneAndUpdate(
          { _id: name },
          {
            $setOnInsert: {
              start_ms: startMs,
              end_ms: endMs,
              status: "active",
              events: 0,
              archive: null,
              restored_at: null,
              updated_at: nowMs,
            },
          },
          { upsert: true, returnDocument: "after", projection: { status: 1 } },
        )
        .lean<Pick<BucketDoc, "status">>();
      if (doc === null) throw new Error(`event bucket ${name} was not registered`);
      return doc.status;
    } catch (err) {
      // Two processes registering the same new bucket: the loser reads the winner's record.
      if (retried || !isDuplicateKeyError(err)) throw err;
      return this.statusOrCreate(name, nowMs, true);
    }
  }

  /**
   * Adds `count` to the bucket's event counter. With `mustBeActive`, the counter moves only
   * while the bucket still holds its events, and false says the bucket is no longer `active`.
   */
  async countInto(bucket: string, count: number, mustBeActive: boolean): Promise<boolean> {
    if (count === 0) return true;
    if (!mustBeActive) {
      await this.models.buckets.updateOne({ _id: bucket }, { $inc: { events: count } });
      return true;
    }
    const doc = await this.models.buckets
      .findOneAndUpdate(
        { _id: bucket, status: { $in: HOLDING_STATUSES } },
        { $inc: { events: count } },
        { returnDocument: "after", projection: { status: 1 } },
      )
      .lean<Pick<BucketDoc, "status">>();
    return doc?.status === "active";
  }

  async setStatus(
    name: string,
    from: BucketStatus,
    to: BucketStatus,
    nowMs: number,
  ): Promise<BucketRecord | null> {
    // Restored events need the collection and its unique index back before the first write.
    if (to === "restoring" && BucketNameSchema.safeParse(name).success) {
      await this.collections.ensure(name, true);
    }
    const set: Partial<BucketDoc> = { status: to, updated_at: nowMs };
    if (from === "restoring" && to === "active") set.restored_at = nowMs;
    const doc = await this.models.buckets
      .findOneAndUpdate({ _id: name, status: from }, { $set: set }, { returnDocument: "after" })
      .lean<BucketDoc>();
    return doc === null ? null : bucketFromDoc(doc);
  }

  /** The bucket's events in (sessionId, seq) order after `after`, at most `limit`. */
  async readEvents(
    name: string,
    after: BucketCursor | null,
    limit: number,
  ): Promise<StoredEvent[]> {
    const collection = this.collections.of(name);
    if (limit <= 0) return [];
    const filter =
      after === null
        ? {}
        : {
            $or: [
              { session_id: { $gt: after.sessionId } },
              { session_id: after.sessionId, seq: { $gt: after.seq } },
            ],
          };
    const docs = await collection
      .find(filter, { projection: { _id: 0 } })
      .sort({ session_id: 1, seq: 1 })
      .limit(limit)
      .toArray();
    return docs.map(eventFromFields);
  }

  /** archiving → archived (events 0, archive recorded), then drops the bucket's collection. */
  async completeArchive(name: string, archive: BucketArchive): Promise<BucketRecord | null> {
    const doc = await this.models.buckets
      .findOneAndUpdate(
        { _id: name, status: "archiving" },
        { $set: { status: "archived", events: 0, archive, updated_at: archive.archivedAt } },
        { returnDocument: "after" },
      )
      .lean<BucketDoc>();
    if (doc === null) {
      // A retry of an archive whose drop failed: finish the drop, still report "not archiving".
      const current = await this.models.buckets.findById(name).lean<BucketDoc>();
      if (current?.status === "archived" && sameArchive(current.archive, archive)) {
        await this.collections.drop(name);
      }
      return null;
    }
    await this.collections.drop(name);
    return bucketFromDoc(doc);
  }
}

function sameArchive(a: BucketArchive | null, b: BucketArchive): boolean {
  return (
    a !== null &&
    a.file === b.file &&
    a.manifest === b.manifest &&
    a.sha256 === b.sha256 &&
    a.events === b.events &&
    a.archivedAt === b.archivedAt
  );
}
