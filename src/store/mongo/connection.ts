/**
 * Opens the mongoose connection the MongoDB store runs on, and the transaction helper every
 * multi-document write uses.
 *
 * Invariants:
 * - one connection (one driver pool) per store handle, opened before the handle is returned:
 *   `bufferCommands` is off, so an operation on a connection that is down fails fast instead of
 *   queueing in memory, and `autoIndex`/`autoCreate` are off, so the store alone decides when
 *   indexes are built (once, at open: see models.ts);
 * - writes are retryable (`retryWrites`), so one network blip or primary election does not fail
 *   a single-document write; like transactions, this needs a replica set (one node is enough);
 * - a connection that cannot be opened is closed again and reported as StoreUnavailableError
 *   without the credentials of its URL.
 */
import mongoose, { type ClientSession, type Connection } from "mongoose";
import type { BucketGranularity } from "../buckets.js";
import { unavailableOr } from "./driver-errors.js";

export interface MongoStoreOptions {
  /** Granularity of new event buckets (existing buckets keep theirs). Default "day". */
  bucketGranularity?: BucketGranularity;
  /** Connections in the driver pool. Default 20. */
  maxPoolSize?: number;
  /** How long an operation waits for a usable server before failing. Default 5000. */
  serverSelectionTimeoutMs?: number;
  /** How long a socket may stay silent during an operation. Default 30000. */
  socketTimeoutMs?: number;
}

export const MONGO_DEFAULTS = {
  bucketGranularity: "day",
  maxPoolSize: 20,
  serverSelectionTimeoutMs: 5_000,
  socketTimeoutMs: 30_000,
} as const satisfies Required<MongoStoreOptions>;

/**
 * Snapshot reads and majority commits: a transaction sees one consistent state, and what it
 * committed survives a primary failover.
 */
const TRANSACTION_OPTIONS = {
  readConcern: { level: "snapshot" },
  writeConcern: { w: "majority" },
} as const;

export async function connectMongo(
  url: string,
  options: MongoStoreOptions = {},
): Promise<Connection> {
  const connection = mongoose.createConnection(url, {
    maxPoolSize: options.maxPoolSize ?? MONGO_DEFAULTS.maxPoolSize,
    serverSelectionTimeoutMS:
      options.serverSelectionTimeoutMs ?? MONGO_DEFAULTS.serverSelectionTimeoutMs,
    socketTimeoutMS: options.socketTimeoutMs ?? MONGO_DEFAULTS.socketTimeoutMs,
    retryWrites: true,
    bufferCommands: false,
    autoIndex: false,
    autoCreate: false,
  });
  try {
    return await connection.asPromise();
  } catch (err) {
    await connection.close().catch(() => undefined);
    throw unavailableOr(err, url);
  }
}

/**
 * Runs `body` in a transaction, passing the session every operation of it must use. The driver
 * retries the whole body on transient errors (write conflicts with a concurrent transaction,
 * a failover), so `body` must have no effect outside the database.
 */
export async function inTransaction<T>(
  connection: Connection,
  body: (session: ClientSession) => Promise<T>,
): Promise<T> {
  return connection.transaction(body, TRANSACTION_OPTIONS);
}
