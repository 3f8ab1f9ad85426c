/**
 * Opens one SQLite connection configured for several farm processes (API, workers, persister)
 * sharing the same file.
 *
 * Invariants:
 * - `busy_timeout` is set before anything else, so even switching to WAL on a fresh file waits
 *   for a concurrent opener instead of failing;
 * - WAL lets readers run beside the single writer; `synchronous = NORMAL` is durable across
 *   process crashes in WAL mode (only an OS crash can lose the last commits);
 * - foreign keys are enforced on every connection (SQLite defaults them off per connection);
 * - the schema is applied before the connection is handed out.
 */
import Database from "better-sqlite3";
import { applySchema } from "./schema.js";

/** How long a writer waits for another process's write lock before failing with SQLITE_BUSY. */
export const SQLITE_BUSY_TIMEOUT_MS = 5_000;

export function openDatabase(filePath: string): Database.Database {
  const db = new Database(filePath, { timeout: SQLITE_BUSY_TIMEOUT_MS });
  try {
    db.pragma(`busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    applySchema(db);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}
