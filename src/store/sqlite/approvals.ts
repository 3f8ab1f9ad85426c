/**
 * Approvals on SQLite (`approvals`). A decision is one conditional UPDATE from `pending`, so two
 * deciders racing cannot both win.
 */
import type Database from "better-sqlite3";
import type { ApprovalDecisionInput, ApprovalRecord, NewApproval } from "../ports/approvals.js";
import { type ApprovalFields, approvalFromFields } from "../stored-shapes.js";

export class SqliteApprovals {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = {
      insert: db.prepare<[NewApproval]>(
        `INSERT OR IGNORE INTO approvals (id, turn_id, session_id, user_id, tool_name,
            tool_call_id, arguments, reason, status, requested_at, expires_at)
         VALUES (@id, @turnId, @sessionId, @userId, @toolName, @toolCallId, @arguments, @reason,
                 'pending', @requestedAt, @expiresAt)`,
      ),
      get: db.prepare<[string], ApprovalFields>("SELECT * FROM approvals WHERE id = ?"),
      decide: db.prepare<[ApprovalDecisionInput & { id: string }], ApprovalFields>(
        `UPDATE approvals SET status = @status, decided_at = @decidedAt, decided_by = @decidedBy,
                note = @note
          WHERE id = @id AND status = 'pending' RETURNING *`,
      ),
      listTurn: db.prepare<[string], ApprovalFields>(
        "SELECT * FROM approvals WHERE turn_id = ? ORDER BY requested_at, id",
      ),
    };
  }

  create(approval: NewApproval): ApprovalRecord {
    this.sql.insert.run(approval);
    return approvalFromFields(this.sql.get.get(approval.id) as ApprovalFields);
  }

  get(id: string): ApprovalRecord | null {
    const row = this.sql.get.get(id);
    return row === undefined ? null : approvalFromFields(row);
  }

  decide(
    id: string,
    decision: ApprovalDecisionInput,
  ): { changed: boolean; approval: ApprovalRecord } | null {
    const decided = this.sql.decide.get({ ...decision, id });
    if (decided !== undefined) return { changed: true, approval: approvalFromFields(decided) };
    const current = this.get(id);
    return current === null ? null : { changed: false, approval: current };
  }

  listTurn(turnId: string): ApprovalRecord[] {
    return this.sql.listTurn.all(turnId).map(approvalFromFields);
  }
}
