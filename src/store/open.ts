/**
 * Chooses and opens the store a farm process uses, from configuration.
 *
 * Invariants:
 * - with no MongoDB URL the embedded SQLite store is used, at `store.sqlitePath` or
 *   `<dataDir>/farm.sqlite`, and its folder is created if missing;
 * - a configured MongoDB URL is never silently ignored: until the MongoDB adapter exists, opening
 *   fails with a message saying how to run on SQLite instead.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import type { FarmConfig } from "../config/schema.js";
import type { Store } from "./port.js";
import { SqliteStore } from "./sqlite/sqlite-store.js";

export const SQLITE_DEFAULT_FILE_NAME = "farm.sqlite";

export async function openStore(config: FarmConfig): Promise<Store> {
  if (config.store.mongoUrl !== undefined) {
    throw new Error(
      "MONGO_URL is set, but the MongoDB store adapter is not available in this version " +
        "(it arrives with the durable-storage issue). Unset MONGO_URL to use the embedded " +
        "SQLite store.",
    );
  }
  const filePath = config.store.sqlitePath ?? path.join(config.dataDir, SQLITE_DEFAULT_FILE_NAME);
  await mkdir(path.dirname(path.resolve(filePath)), { recursive: true });
  return SqliteStore.open(filePath);
}
