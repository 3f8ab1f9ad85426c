/**
 * The per-bucket event collections (`events_<bucket>`), reached as native collections through
 * the mongoose connection: making them with their indexes, inserting without duplicates, and
 * dropping them once archived.
 *
 * Invariants:
 * - a bucket collection is written only after its unique (session_id, seq) index exists: every
 *   insert first awaits `ensure`, which creates the indexes once per collection and process
 *   (cached; `force` re-creates them after another process may have dropped the collection);
 * - an insert is idempotent on (session_id, seq): duplicate-key rejections mean "already
 *   stored" and are left out of what was inserted; any other write error is thrown;
 * - only valid bucket names become collection names (bucketRange validates them).
 */
import mongoose, { type Collection, type Connection } from "mongoose";
import { bucketRange, bucketTable } from "../buckets.js";
import type { EventDoc } from "./documents.js";
import {
  DUPLICATE_KEY_CODE,
  isDuplicateKeyError,
  NAMESPACE_NOT_FOUND_CODE,
  writeErrorsOf,
} from "./driver-errors.js";

const { mongo } = mongoose;

const EVENT_INDEXES = [
  { key: { session_id: 1, seq: 1 }, name: "session_seq", unique: true },
  { key: { turn_id: 1, seq: 1 }, name: "turn_seq" },
] as const;

/** Server codes of index builds racing another process's (retried after a short pause). */
const INDEX_RACE_CODES = new Set([
  48, // NamespaceExists
  112, // WriteConflict
  276, // IndexBuildAlreadyInProgress
]);
const INDEX_ATTEMPTS = 3;
const INDEX_RETRY_PAUSE_MS = 25;

export class EventCollections {
  private readonly ensured = new Map<string, Promise<void>>();

  constructor(private readonly connection: Connection) {}

  /** The bucket's collection; throws on a name that is not a bucket name. */
  of(bucket: string): Collection<EventDoc> {
    bucketRange(bucket);
    return this.connection.collection<EventDoc>(bucketTable(bucket));
  }

  /** Makes sure the bucket's collection and indexes exist (once per process unless `force`). */
  async ensure(bucket: string, force = false): Promise<void> {
    const collection = this.of(bucket);
    let ensuring = force ? undefined : this.ensured.get(bucket);
    if (ensuring === undefined) {
      ensuring = createIndexes(collection);
      this.ensured.set(bucket, ensuring);
      const settled = ensuring;
      // A failed build is not cached: the next write tries again.
      settled.catch(() => {
        if (this.ensured.get(bucket) === settled) this.ensured.delete(bucket);
      });
    }
    await ensuring;
  }

  /**
   * Inserts `docs` into the bucket, ignoring those whose (session_id, seq) is already stored;
   * returns the positions (in `docs`) of the ones that were duplicates.
   */
  async insert(bucket: string, docs: EventDoc[]): Promise<Set<number>> {
    await this.ensure(bucket);
    try {
      // Copies: the driver adds an _id to what it inserts.
      await this.of(bucket).insertMany(
        docs.map((doc) => ({ ...doc })),
        { ordered: false },
      );
      return new Set();
    } catch (err) {
      if (!(err instanceof mongo.MongoBulkWriteError) || !isDuplicateKeyError(err)) throw err;
      const duplicates = writeErrorsOf(err).filter((e) => e.code === DUPLICATE_KEY_CODE);
      return new Set(duplicates.map((e) => e.index));
    }
  }

  /** Drops the bucket's events (a collection that is already gone is fine). */
  async drop(bucket: string): Promise<void> {
    const collection = this.of(bucket);
    this.ensured.delete(bucket);
    try {
      await collection.drop();
    } catch (err) {
      if (!(err instanceof mongo.MongoServerError && err.code === NAMESPACE_NOT_FOUND_CODE)) {
        throw err;
      }
    }
    this.ensured.delete(bucket);
  }
}

async function createIndexes(collection: Collection<EventDoc>): Promise<void> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      await collection.createIndexes(EVENT_INDEXES.map((index) => ({ ...index })));
      return;
    } catch (err) {
      const racing =
        err instanceof mongo.MongoServerError &&
        typeof err.code === "number" &&
        INDEX_RACE_CODES.has(err.code);
      if (!racing || attempt >= INDEX_ATTEMPTS) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, INDEX_RETRY_PAUSE_MS * attempt));
  }
}
