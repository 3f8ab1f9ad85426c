/**
 * The SQLite schema of the embedded store and the version stamp later issues migrate from.
 *
 * Invariants:
 * - applying the schema is idempotent (`CREATE … IF NOT EXISTS`) and runs in one IMMEDIATE
 *   transaction, so several processes opening a fresh file at once cannot interleave DDL;
 * - `PRAGMA user_version` holds SCHEMA_VERSION; a file stamped with a newer version is refused
 *   instead of being written by code that does not know its layout;
 * - this issue keeps every event in one `events` table keyed by (session_id, seq); the
 *   time-bucketed event layout arrives with the MongoDB (durable storage) issue.
 *
 * Foreign keys tie turns, history and idempotency records to their parents. `events` has none on
 * purpose: it is the persister's hot path and the event log must never refuse an emitted event.
 */
import type Database from "better-sqlite3";

export const SCHEMA_VERSION = 1;

const SCHEMA_V1_SQL = `
CREATE TABLE IF NOT EXISTS sessions (
  id         TEXT PRIMARY KEY,
  user_id    TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS turns (
  id              TEXT PRIMARY KEY,
  session_id      TEXT NOT NULL REFERENCES sessions(id),
  user_id         TEXT NOT NULL,
  status          TEXT NOT NULL,
  input           TEXT NOT NULL,
  model           TEXT NOT NULL,
  tools           TEXT NOT NULL,
  metadata        TEXT,
  idempotency_key TEXT,
  created_at      INTEGER NOT NULL,
  started_at      INTEGER,
  finished_at     INTEGER,
  attempt         INTEGER NOT NULL DEFAULT 0,
  answer          TEXT,
  stop_reason     TEXT,
  usage           TEXT,
  error           TEXT,
  first_seq       INTEGER,
  last_seq        INTEGER
);
CREATE INDEX IF NOT EXISTS turns_status_created ON turns(status, created_at);
CREATE INDEX IF NOT EXISTS turns_session_created ON turns(session_id, created_at);

CREATE TABLE IF NOT EXISTS events (
  session_id TEXT NOT NULL,
  seq        INTEGER NOT NULL,
  turn_id    TEXT NOT NULL,
  type       TEXT NOT NULL,
  ts         INTEGER NOT NULL,
  envelope   TEXT NOT NULL,
  PRIMARY KEY (session_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_turn_seq ON events(turn_id, seq);

CREATE TABLE IF NOT EXISTS session_history (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  idx        INTEGER NOT NULL,
  turn_id    TEXT NOT NULL,
  message    TEXT NOT NULL,
  PRIMARY KEY (session_id, idx)
);

CREATE TABLE IF NOT EXISTS idempotency (
  user_id      TEXT NOT NULL,
  key          TEXT NOT NULL,
  request_hash TEXT NOT NULL,
  turn_id      TEXT NOT NULL REFERENCES turns(id),
  created_at   INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_expires ON idempotency(expires_at);
`;

/** Creates any missing table or index and stamps the version; refuses a newer file. */
export function applySchema(db: Database.Database): void {
  const apply = db.transaction(() => {
    const found = db.pragma("user_version", { simple: true }) as number;
    if (found > SCHEMA_VERSION) {
      throw new Error(
        `SQLite store ${db.name} has schema version ${found}, newer than this build's ` +
          `${SCHEMA_VERSION}; upgrade the farm before opening it`,
      );
    }
    db.exec(SCHEMA_V1_SQL);
    // PRAGMA takes no bound parameters; SCHEMA_VERSION is a constant integer.
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  });
  apply.immediate();
}
