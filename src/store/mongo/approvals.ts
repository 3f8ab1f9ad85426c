/**
 * Approvals on MongoDB (`approvals`). A decision is one conditional update from `pending`
 * (findOneAndUpdate on `{_id, status: "pending"}`), so two deciders racing cannot both win; the
 * loser is answered with the decision that stands.
 *
 * Invariant: `create` is idempotent on id — an insert that finds the id taken is ignored and the
 * stored approval is returned (the first request wins).
 */
import type { ApprovalDecisionInput, ApprovalRecord, NewApproval } from "../ports/approvals.js";
import { type ApprovalDoc, approvalFromDoc } from "./documents.js";
import { isDuplicateKeyError } from "./driver-errors.js";
import type { MongoModels } from "./models.js";

export class MongoApprovals {
  constructor(private readonly models: MongoModels) {}

  async create(approval: NewApproval): Promise<ApprovalRecord> {
    const doc: ApprovalDoc = {
      _id: approval.id,
      turn_id: approval.turnId,
      session_id: approval.sessionId,
      user_id: approval.userId,
      tool_name: approval.toolName,
      tool_call_id: approval.toolCallId,
      arguments: approval.arguments,
      reason: approval.reason,
      status: "pending",
      requested_at: approval.requestedAt,
      expires_at: approval.expiresAt,
      decided_at: null,
      decided_by: null,
      note: null,
    };
    try {
      await this.models.approvals.insertMany([doc], { lean: true });
    } catch (err) {
      // A retried step finds its request: the stored one stands.
      if (!isDuplicateKeyError(err)) throw err;
    }
    const stored = await this.get(approval.id);
    if (stored === null)
      throw new Error(`approval ${approval.id} is missing right after its write`);
    return stored;
  }

  async get(id: string): Promise<ApprovalRecord | null> {
    const doc = await this.models.approvals.findById(id).lean<ApprovalDoc>();
    return doc === null ? null : approvalFromDoc(doc);
  }

  async decide(
    id: string,
    decision: ApprovalDecisionInput,
  ): Promise<{ changed: boolean; approval: ApprovalRecord } | null> {
    const decided = await this.models.approvals
      .findOneAndUpdate(
        { _id: id, status: "pending" },
        {
          $set: {
            status: decision.status,
            decided_at: decision.decidedAt,
            decided_by: decision.decidedBy,
            note: decision.note,
          },
        },
        { returnDocument: "after" },
      )
      .lean<ApprovalDoc>();
    if (decided !== null) return { changed: true, approval: approvalFromDoc(decided) };
    const current = await this.get(id);
    return current === null ? null : { changed: false, approval: current };
  }

  async listTurn(turnId: string): Promise<ApprovalRecord[]> {
    const docs = await this.models.approvals
      .find({ turn_id: turnId })
      .sort({ requested_at: 1, _id: 1 })
      .lean<ApprovalDoc[]>();
    return docs.map(approvalFromDoc);
  }
}
