/**
 * Session snapshots on SQLite (`session_snapshots`), and loading a session's context from the
 * latest snapshot plus the history items after it.
 *
 * Invariant: a snapshot is saved only if it covers exactly the session's current history
 * (checked inside the IMMEDIATE transaction that writes it), so snapshot + tail is always the
 * history with nothing skipped or repeated.
 */
import type Database from "better-sqlite3";
import type { SessionContext, SessionSnapshot } from "../ports/snapshots.js";
import {
  historyMessageFromText,
  type SnapshotFields,
  sessionContextOf,
  snapshotFromFields,
} from "../stored-shapes.js";
import type { Statements } from "./statements.js";

/** Older snapshots than the newest few are pruned: loading only ever reads the latest. */
export const SNAPSHOTS_KEPT_PER_SESSION = 2;

export class SqliteSnapshots {
  private readonly sql;

  constructor(
    db: Database.Database,
    private readonly history: Pick<Statements, "historyLength" | "historyFrom">,
  ) {
    this.sql = {
      insert: db.prepare<[string, number, number, string, string, number]>(
        `INSERT INTO session_snapshots
           (session_id, history_length, seq, reason, messages, created_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (session_id, history_length) DO UPDATE
           SET seq = excluded.seq, reason = excluded.reason, messages = excluded.messages,
               created_at = excluded.created_at
         WHERE excluded.reason = 'compaction'`,
      ),
      prune: db.prepare<[string, string, number]>(
        `DELETE FROM session_snapshots WHERE session_id = ? AND history_length < (
           SELECT MIN(history_length) FROM (
             SELECT history_length FROM session_snapshots WHERE session_id = ?
              ORDER BY history_length DESC LIMIT ?))`,
      ),
      latest: db.prepare<[string], SnapshotFields>(
        `SELECT * FROM session_snapshots WHERE session_id = ?
          ORDER BY history_length DESC LIMIT 1`,
      ),
    };
  }

  /** Body of the save transaction. */
  saveIn(snapshot: SessionSnapshot): boolean {
    if (this.history.historyLength.get(snapshot.sessionId) !== snapshot.historyLength) return false;
    this.sql.insert.run(
      snapshot.sessionId,
      snapshot.historyLength,
      snapshot.seq,
      snapshot.reason,
      JSON.stringify(snapshot.messages),
      snapshot.createdAt,
    );
    this.sql.prune.run(snapshot.sessionId, snapshot.sessionId, SNAPSHOTS_KEPT_PER_SESSION);
    return true;
  }

  latest(sessionId: string): SessionSnapshot | null {
    const row = this.sql.latest.get(sessionId);
    return row === undefined ? null : snapshotFromFields(row);
  }

  /** Snapshot and tail read in one transaction, so a concurrent finish cannot split them. */
  loadIn(sessionId: string): SessionContext {
    const snapshot = this.latest(sessionId);
    const tail = this.history.historyFrom
      .all(sessionId, snapshot?.historyLength ?? 0)
      .map(historyMessageFromText);
    return sessionContextOf(snapshot, tail);
  }
}
