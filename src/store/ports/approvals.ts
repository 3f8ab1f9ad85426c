/**
 * Port part: approval requests for tool calls that policy holds for a human decision.
 *
 * Contract:
 * - `createApproval` is idempotent on id (a retried step finds its request, it does not add one);
 * - a decision moves an approval out of `pending` once: `decideApproval` on a decided approval
 *   changes nothing and reports `changed: false` with the decision that stands.
 */

export const APPROVAL_STATUSES = ["pending", "approved", "denied", "expired"] as const;
export type ApprovalStatus = (typeof APPROVAL_STATUSES)[number];
export type ApprovalDecision = Exclude<ApprovalStatus, "pending">;

export interface NewApproval {
  id: string;
  turnId: string;
  sessionId: string;
  userId: string;
  toolName: string;
  toolCallId: string;
  /** The call's arguments as the model produced them (JSON text). */
  arguments: string;
  /** Why policy asks (the matched rule). */
  reason: string | null;
  requestedAt: number;
  expiresAt: number;
}

export interface ApprovalRecord extends NewApproval {
  status: ApprovalStatus;
  decidedAt: number | null;
  decidedBy: string | null;
  note: string | null;
}

export interface ApprovalDecisionInput {
  status: ApprovalDecision;
  decidedAt: number;
  decidedBy: string;
  note: string | null;
}

export interface ApprovalStore {
  createApproval(approval: NewApproval): Promise<ApprovalRecord>;
  getApproval(id: string): Promise<ApprovalRecord | null>;
  decideApproval(
    id: string,
    decision: ApprovalDecisionInput,
  ): Promise<{ changed: boolean; approval: ApprovalRecord } | null>;
  /** A turn's approvals in request order. */
  listTurnApprovals(turnId: string): Promise<ApprovalRecord[]>;
}
