/**
 * Opens one SQLite connection configured for several farm processes (API, workers, persister)
 * sharing the same file.
 *
 * Invariants:
 * - `busy_timeout` is long while the file is opened (switching to WAL or creating the schema
 *   waits for a concurrent opener), then short: SQLite's busy handler *sleeps the thread*, which
 *   would stall the event loop of an API or worker for milliseconds, so a busy write fails
 *   fast and the store retries it asynchronously (see `busy-retry.ts`);
 * - WAL lets readers run beside the single writer; `synchronous = NORMAL` is durable across
 *   process crashes in WAL mode (only an OS crash can lose the last commits);
 * - foreign keys are enforced on every connection (SQLite defaults them off per connection);
 * - the schema is applied before the connection is handed out.
 */
import Database from "better-sqlite3";
import type { BucketGranularity } from "../buckets.js";
import { SqliteEventBuckets } from "./event-buckets.js";
import { applySchema } from "./schema.js";

/** How long opening the file waits for another process's lock before failing with SQLITE_BUSY. */
const SQLITE_OPEN_BUSY_TIMEOUT_MS = 5_000;
/** After opening: the longest a statement blocks the thread before reporting SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 1;

export function openDatabase(filePath: string, granularity: BucketGranularity): Database.Database {
  const db = new Database(filePath, { timeout: SQLITE_OPEN_BUSY_TIMEOUT_MS });
  try {
    db.pragma(`busy_timeout = ${SQLITE_OPEN_BUSY_TIMEOUT_MS}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    applySchema(db, (events) =>
      new SqliteEventBuckets(db, granularity).appendIn(events, Date.now()),
    );
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
