/**
 * Every SQL statement the SQLite store runs, prepared once per connection.
 *
 * Invariants:
 * - "non-terminal" is spelled once, from the port's status lists, so SQL and TypeScript agree;
 * - a status change is a single conditional UPDATE (`… WHERE status IN (non-terminal)`), so two
 *   processes racing to move the same turn cannot both succeed;
 * - an idempotency record counts as expired once `expires_at <= now`, both when a create meets
 *   it and when the purge removes it.
 */
import type Database from "better-sqlite3";
import { isTerminal, type SessionUsage, TURN_STATUSES } from "../port.js";
import type { SessionFields } from "../stored-shapes.js";
import type { IdempotencyRow, TurnRow } from "./rows.js";

// Interpolating is safe: the list is a compile-time constant, not user input.
const NON_TERMINAL_SQL = TURN_STATUSES.filter((status) => !isTerminal(status))
  .map((status) => `'${status}'`)
  .join(", ");

export interface InsertTurnParams {
  id: string;
  sessionId: string;
  userId: string;
  kind: string;
  traceId: string | null;
  traceParent: string | null;
  input: string;
  model: string;
  tools: string;
  metadata: string | null;
  idempotencyKey: string | null;
  createdAt: number;
  firstSeq: number | null;
}

export interface FinishTurnParams {
  id: string;
  status: string;
  finishedAt: number;
  answer: string | null;
  stopReason: string | null;
  usage: string | null;
  error: string | null;
}

export type Statements = ReturnType<typeof prepareStatements>;

export function prepareStatements(db: Database.Database) {
  return {
    ping: db.prepare<[], unknown>("SELECT 1"),

    getSession: db.prepare<[string], SessionFields>("SELECT * FROM sessions WHERE id = ?"),
    insertSession: db.prepare<[string, string, number, number]>(
      "INSERT INTO sessions (id, user_id, created_at, updated_at) VALUES (?, ?, ?, ?)",
    ),
    /** Sessions are only ever touched forward in time, whatever order processes commit in. */
    touchSession: db.prepare<[number, string]>(
      "UPDATE sessions SET updated_at = MAX(updated_at, ?) WHERE id = ?",
    ),

    getTurn: db.prepare<[string], TurnRow>("SELECT * FROM turns WHERE id = ?"),
    insertTurn: db.prepare<InsertTurnParams>(
      `INSERT INTO turns (id, session_id, user_id, status, kind, trace_id, trace_parent, input,
                          model, tools, metadata, idempotency_key, created_at, attempt, first_seq)
       VALUES (@id, @sessionId, @userId, 'queued', @kind, @traceId, @traceParent, @input,
               @model, @tools, @metadata, @idempotencyKey, @createdAt, 0, @firstSeq)`,
    ),
    setTurnFirstSeq: db.prepare<[number, string]>("UPDATE turns SET first_seq = ? WHERE id = ?"),
    markTurnRunning: db.prepare<[number, string], TurnRow>(
      `UPDATE turns
          SET status = 'running', attempt = attempt + 1, started_at = COALESCE(started_at, ?)
        WHERE id = ? AND status IN (${NON_TERMINAL_SQL})
       RETURNING *`,
    ),
    finishTurn: db.prepare<FinishTurnParams, { session_id: string }>(
      `UPDATE turns
          SET status = @status, finished_at = @finishedAt, answer = @answer,
              stop_reason = @stopReason, usage = @usage, error = @error
        WHERE id = @id AND status IN (${NON_TERMINAL_SQL})
       RETURNING session_id`,
    ),
    listSessionTurns: db.prepare<[string, number], TurnRow>(
      `SELECT * FROM turns WHERE session_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
    ),
    sessionUsage: db.prepare<[string], SessionUsage>(
      `SELECT COALESCE(SUM(json_extract(usage, '$.input_tokens')), 0) AS input_tokens,
              COALESCE(SUM(json_extract(usage, '$.output_tokens')), 0) AS output_tokens,
              COALESCE(SUM(json_extract(usage, '$.total_tokens')), 0) AS total_tokens,
              COUNT(*) AS turns
         FROM turns WHERE session_id = ? AND json_type(usage) = 'object'`,
    ),
    listStaleTurns: db.prepare<[number, number, string, number], TurnRow>(
      `SELECT * FROM turns
        WHERE status IN (${NON_TERMINAL_SQL}) AND created_at < ?
          AND (created_at, id) > (?, ?)
        ORDER BY created_at, id
        LIMIT ?`,
    ),

    /** Items in the session's history: also the idx the next item gets. */
    historyLength: db
      .prepare<[string], number>(
        "SELECT COALESCE(MAX(idx), -1) + 1 FROM session_history WHERE session_id = ?",
      )
      .pluck(),
    insertHistory: db.prepare<[string, number, string, string]>(
      "INSERT INTO session_history (session_id, idx, turn_id, message) VALUES (?, ?, ?, ?)",
    ),
    /** The session's history items from idx onward (0: all of it), in order. */
    historyFrom: db
      .prepare<[string, number], string>(
        "SELECT message FROM session_history WHERE session_id = ? AND idx >= ? ORDER BY idx",
      )
      .pluck(),

    getIdempotency: db.prepare<[string, string], IdempotencyRow>(
      "SELECT request_hash, turn_id, expires_at FROM idempotency WHERE user_id = ? AND key = ?",
    ),
    deleteIdempotency: db.prepare<[string, string]>(
      "DELETE FROM idempotency WHERE user_id = ? AND key = ?",
    ),
    insertIdempotency: db.prepare<[string, string, string, string, number, number]>(
      `INSERT INTO idempotency (user_id, key, request_hash, turn_id, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    purgeExpiredIdempotency: db.prepare<[number]>("DELETE FROM idempotency WHERE expires_at <= ?"),
  };
}
