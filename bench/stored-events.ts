/**
 * The events a benchmark farm has stored, read straight from its SQLite file: one table per time
 * bucket (`events_<bucket>`, see src/store/buckets.ts), so queries span every bucket table that
 * exists when they run.
 */
import path from "node:path";
import Database from "better-sqlite3";

export interface StoredEvents {
  /** Rows of `SELECT <columns> FROM <every bucket table> WHERE <where>`. */
  select<T>(columns: string, where: string, ...params: unknown[]): T[];
  count(): number;
  close(): void;
}

export function openStoredEvents(dataDir: string): StoredEvents {
  const db = new Database(path.join(dataDir, "farm.sqlite"), {
    readonly: true,
    fileMustExist: true,
  });
  const tables = () =>
    (
      db
        .prepare(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'events\\_%' ESCAPE '\\'",
        )
        .all() as { name: string }[]
    ).map((t) => t.name);
  const select = <T>(columns: string, where: string, ...params: unknown[]): T[] =>
    tables().flatMap(
      (table) => db.prepare(`SELECT ${columns} FROM ${table} WHERE ${where}`).all(...params) as T[],
    );
  return {
    select,
    count: () => select<{ n: number }>("count(*) AS n", "1").reduce((sum, row) => sum + row.n, 0),
    close: () => db.close(),
  };
}
