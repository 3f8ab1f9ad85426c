/**
 * Chooses and opens the store a farm process uses, from configuration.
 *
 * Invariants:
 * - with no MongoDB URL the embedded SQLite store is used, at `store.sqlitePath` or
 *   `<dataDir>/farm.sqlite`, and its folder is created if missing;
 * - with a MongoDB URL the MongoDB adapter is used; a server that cannot be reached fails the
 *   open with StoreUnavailableError (the role then exits non-zero, to be restarted) — it never
 *   falls back to SQLite, which would split the data.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { FarmConfig } from "../config/schema.js";
import { MongoStore } from "./mongo/mongo-store.js";
import type { Store } from "./port.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

export const SQLITE_DEFAULT_FILE_NAME = "farm.sqlite";

export async function openStore(config: FarmConfig): Promise<Store> {
  const { store } = config;
  if (store.mongoUrl !== undefined) {
    return MongoStore.open(store.mongoUrl, {
      bucketGranularity: store.bucketGranularity,
      maxPoolSize: store.mongoMaxPoolSize,
      serverSelectionTimeoutMs: store.mongoServerSelectionTimeoutMs,
      socketTimeoutMs: store.mongoSocketTimeoutMs,
    });
  }
  const filePath = store.sqlitePath ?? path.join(config.dataDir, SQLITE_DEFAULT_FILE_NAME);
  await mkdir(path.dirname(path.resolve(filePath)), { recursive: true });
  return SqliteStore.open(filePath, { bucketGranularity: store.bucketGranularity });
}
