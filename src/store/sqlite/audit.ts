/**
 * The audit log on SQLite (`audit_log`): an AUTOINCREMENT id gives append order; it is handed
 * out zero-padded so ids compare as strings in that order, as the port promises.
 */
import type Database from "better-sqlite3";
import type { AuditEntry, AuditQuery, NewAuditEntry } from "../ports/audit.js";
import { parseNullable } from "./rows.js";

const ID_DIGITS = 16;

interface AuditRow {
  id: number;
  ts: number;
  actor: string;
  action: string;
  subject_type: string;
  subject_id: string;
  details: string | null;
}

export class SqliteAudit {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = {
      insert: db.prepare<[number, string, string, string, string, string | null], AuditRow>(
        `INSERT INTO audit_log (ts, actor, action, subject_type, subject_id, details)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING *`,
      ),
      list: db.prepare<[number, number], AuditRow>(
        "SELECT * FROM audit_log WHERE id > ? ORDER BY id LIMIT ?",
      ),
      listSubject: db.prepare<[string, number, number], AuditRow>(
        "SELECT * FROM audit_log WHERE subject_id = ? AND id > ? ORDER BY id LIMIT ?",
      ),
    };
  }

  append(entry: NewAuditEntry): AuditEntry {
    const row = this.sql.insert.get(
      entry.ts,
      entry.actor,
      entry.action,
      entry.subjectType,
      entry.subjectId,
      entry.details === null ? null : JSON.stringify(entry.details),
    ) as AuditRow;
    return auditFromRow(row);
  }

  list(query: AuditQuery): AuditEntry[] {
    const after = query.afterId === undefined ? 0 : Number.parseInt(query.afterId, 10) || 0;
    const rows =
      query.subjectId === undefined
        ? this.sql.list.all(after, query.limit)
        : this.sql.listSubject.all(query.subjectId, after, query.limit);
    return rows.map(auditFromRow);
  }
}

function auditFromRow(row: AuditRow): AuditEntry {
  return {
    id: String(row.id).padStart(ID_DIGITS, "0"),
    ts: row.ts,
    actor: row.actor,
    action: row.action,
    subjectType: row.subject_type,
    subjectId: row.subject_id,
    details: parseNullable<Record<string, unknown>>(row.details),
  };
}
