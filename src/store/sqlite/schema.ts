/**
 * The SQLite schema of the embedded store and the version stamp later issues migrate from.
 *
 * Invariants:
 * - applying the schema is idempotent (`CREATE … IF NOT EXISTS`) and runs in one IMMEDIATE
 *   transaction, so several processes opening a fresh file at once cannot interleave DDL;
 * - `PRAGMA user_version` holds SCHEMA_VERSION; a file stamped with a newer version is refused
 *   instead of being written by code that does not know its layout;
 * - events live in one table per time bucket (`events_<bucket>`, made on demand by
 *   event-buckets.ts), found through `session_buckets` and registered in `event_buckets`;
 * - a version-1 file (one `events` table) is migrated in the same transaction: its events are
 *   moved into bucket tables, so an upgrade keeps every event.
 *
 * Foreign keys tie turns, history and idempotency records to their parents. The event tables have
 * none on purpose: they are the persister's hot path and must never refuse an emitted event.
 */
import type Database from "better-sqlite3";
import type { StoredEvent } from "../ports/events.js";
import { type EventFields, eventFromFields } from "../stored-shapes.js";

export const SCHEMA_VERSION = 3;

const SCHEMA_SQL = `
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
  kind            TEXT NOT NULL DEFAULT 'agent',
  trace_id        TEXT,
  trace_parent    TEXT,
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

CREATE TABLE IF NOT EXISTS event_buckets (
  name        TEXT PRIMARY KEY,
  start_ms    INTEGER NOT NULL,
  end_ms      INTEGER NOT NULL,
  status      TEXT NOT NULL,
  events      INTEGER NOT NULL,
  archive     TEXT,
  restored_at INTEGER,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS session_buckets (
  session_id TEXT NOT NULL,
  bucket     TEXT NOT NULL,
  first_seq  INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL,
  PRIMARY KEY (session_id, bucket)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS session_snapshots (
  session_id     TEXT NOT NULL,
  history_length INTEGER NOT NULL,
  seq            INTEGER NOT NULL,
  reason         TEXT NOT NULL,
  messages       TEXT NOT NULL,
  created_at     INTEGER NOT NULL,
  PRIMARY KEY (session_id, history_length)
);

CREATE TABLE IF NOT EXISTS artifacts (
  id           TEXT PRIMARY KEY,
  session_id   TEXT NOT NULL,
  turn_id      TEXT,
  user_id      TEXT NOT NULL,
  kind         TEXT NOT NULL,
  name         TEXT NOT NULL,
  content_type TEXT NOT NULL,
  size_bytes   INTEGER NOT NULL,
  sha256       TEXT NOT NULL,
  content      BLOB NOT NULL,
  created_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS artifacts_session_created ON artifacts(session_id, created_at);

CREATE TABLE IF NOT EXISTS approvals (
  id           TEXT PRIMARY KEY,
  turn_id      TEXT NOT NULL,
  session_id   TEXT NOT NULL,
  user_id      TEXT NOT NULL,
  tool_name    TEXT NOT NULL,
  tool_call_id TEXT NOT NULL,
  arguments    TEXT NOT NULL,
  reason       TEXT,
  status       TEXT NOT NULL,
  requested_at INTEGER NOT NULL,
  expires_at   INTEGER NOT NULL,
  decided_at   INTEGER,
  decided_by   TEXT,
  note         TEXT
);
CREATE INDEX IF NOT EXISTS approvals_turn_requested ON approvals(turn_id, requested_at);

CREATE TABLE IF NOT EXISTS audit_log (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  ts           INTEGER NOT NULL,
  actor        TEXT NOT NULL,
  action       TEXT NOT NULL,
  subject_type TEXT NOT NULL,
  subject_id   TEXT NOT NULL,
  details      TEXT
);
CREATE INDEX IF NOT EXISTS audit_subject ON audit_log(subject_id, id);
`;

/** Version 1 kept all events in one table; its rows move into bucket tables on upgrade. */
const V1_EVENTS_TABLE = "events";

/**
 * Creates any missing table or index and stamps the version; refuses a newer file.
 * `moveV1Events` appends a version-1 file's events into the bucket tables (inside this transaction).
 */
export function applySchema(
  db: Database.Database,
  moveV1Events: (events: StoredEvent[]) => void,
): void {
  const apply = db.transaction(() => {
    const found = db.pragma("user_version", { simple: true }) as number;
    if (found > SCHEMA_VERSION) {
      throw new Error(
        `SQLite store ${db.name} has schema version ${found}, newer than this build's ` +
          `${SCHEMA_VERSION}; upgrade the farm before opening it`,
      );
    }
    if (found >= 1) addTurnColumns(db);
    db.exec(SCHEMA_SQL);
    if (found === 1) migrateV1Events(db, moveV1Events);
    // PRAGMA takes no bound parameters; SCHEMA_VERSION is a constant integer.
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  });
  apply.immediate();
}

/**
 * Columns added to `turns` since version 1: older turns are agent turns without a trace. A new
 * nullable column needs no version bump: older builds ignore it.
 */
const ADDED_TURN_COLUMNS: [string, string][] = [
  ["kind", "TEXT NOT NULL DEFAULT 'agent'"],
  ["trace_id", "TEXT"],
  ["trace_parent", "TEXT"],
];

function addTurnColumns(db: Database.Database): void {
  const columns = db.prepare<[], { name: string }>("PRAGMA table_info(turns)").all();
  if (columns.length === 0) return;
  for (const [name, type] of ADDED_TURN_COLUMNS) {
    if (!columns.some((c) => c.name === name)) {
      db.exec(`ALTER TABLE turns ADD COLUMN ${name} ${type}`);
    }
  }
}

function migrateV1Events(db: Database.Database, move: (events: StoredEvent[]) => void): void {
  const exists = db
    .prepare<[string], number>(
      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?",
    )
    .pluck()
    .get(V1_EVENTS_TABLE);
  if (!exists) return;
  const rows = db.prepare<[], EventFields>(`SELECT * FROM ${V1_EVENTS_TABLE}`).all();
  move(rows.map(eventFromFields));
  db.exec(`DROP TABLE ${V1_EVENTS_TABLE}`);
}
