/**
 * The stored shape of the records both adapters keep field for field alike — SQLite rows and
 * MongoDB documents use the same snake_case names — and the one mapping of each to its port
 * record. (Turns, buckets and audit entries differ between adapters in how JSON values and ids
 * are kept, so each adapter maps those itself.)
 *
 * Invariants: a value outside its known set (status, reason) throws rather than handing a
 * wrong-shaped record to the farm; `envelope` is passed through as the exact text stored; fields
 * a document may lack read as null.
 */
import { type ContextMessage, ContextMessageSchema } from "../context/message.js";
import { APPROVAL_STATUSES, type ApprovalRecord } from "./ports/approvals.js";
import type { ArtifactRecord } from "./ports/artifacts.js";
import type { StoredEvent } from "./ports/events.js";
import { type SessionContext, type SessionSnapshot, SNAPSHOT_REASONS } from "./ports/snapshots.js";
import type { SessionRecord } from "./ports/turns.js";

export interface SessionFields {
  id: string;
  user_id: string;
  created_at: number;
  updated_at: number;
}

export interface EventFields {
  session_id: string;
  seq: number;
  turn_id: string;
  type: string;
  ts: number;
  envelope: string;
}

export interface SnapshotFields {
  session_id: string;
  history_length: number;
  seq: number;
  reason: string;
  /** ContextMessage[] as JSON text. */
  messages: string;
  created_at: number;
}

export interface ArtifactFields {
  id: string;
  session_id: string;
  turn_id: string | null;
  user_id: string;
  kind: string;
  name: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  created_at: number;
}

export interface ApprovalFields {
  id: string;
  turn_id: string;
  session_id: string;
  user_id: string;
  tool_name: string;
  tool_call_id: string;
  arguments: string;
  reason: string | null;
  status: string;
  requested_at: number;
  expires_at: number;
  decided_at: number | null;
  decided_by: string | null;
  note: string | null;
}

export function sessionFromFields(f: SessionFields): SessionRecord {
  return { id: f.id, userId: f.user_id, createdAt: f.created_at, updatedAt: f.updated_at };
}

export function eventFromFields(f: EventFields): StoredEvent {
  return {
    sessionId: f.session_id,
    seq: f.seq,
    turnId: f.turn_id,
    type: f.type,
    ts: f.ts,
    envelope: f.envelope,
  };
}

export function eventFields(event: StoredEvent): EventFields {
  return {
    session_id: event.sessionId,
    seq: event.seq,
    turn_id: event.turnId,
    type: event.type,
    ts: event.ts,
    envelope: event.envelope,
  };
}

export function historyMessageFromText(message: string): ContextMessage {
  return ContextMessageSchema.parse(JSON.parse(message));
}

export function snapshotFromFields(f: SnapshotFields): SessionSnapshot {
  return {
    sessionId: f.session_id,
    historyLength: f.history_length,
    seq: f.seq,
    reason: knownValue(SNAPSHOT_REASONS, f.reason, `snapshot of session ${f.session_id} reason`),
    messages: ContextMessageSchema.array().parse(JSON.parse(f.messages)),
    createdAt: f.created_at,
  };
}

export function artifactFromFields(f: ArtifactFields): ArtifactRecord {
  return {
    id: f.id,
    sessionId: f.session_id,
    turnId: f.turn_id ?? null,
    userId: f.user_id,
    kind: f.kind,
    name: f.name,
    contentType: f.content_type,
    sizeBytes: f.size_bytes,
    sha256: f.sha256,
    createdAt: f.created_at,
  };
}

export function approvalFromFields(f: ApprovalFields): ApprovalRecord {
  return {
    id: f.id,
    turnId: f.turn_id,
    sessionId: f.session_id,
    userId: f.user_id,
    toolName: f.tool_name,
    toolCallId: f.tool_call_id,
    arguments: f.arguments,
    reason: f.reason ?? null,
    status: knownValue(APPROVAL_STATUSES, f.status, `approval ${f.id} status`),
    requestedAt: f.requested_at,
    expiresAt: f.expires_at,
    decidedAt: f.decided_at ?? null,
    decidedBy: f.decided_by ?? null,
    note: f.note ?? null,
  };
}

/** A session's context: the snapshot's messages (if any) followed by the history after it. */
export function sessionContextOf(
  snapshot: SessionSnapshot | null,
  tail: ContextMessage[],
): SessionContext {
  const from = snapshot?.historyLength ?? 0;
  return {
    messages: snapshot ? [...snapshot.messages, ...tail] : tail,
    historyLength: from + tail.length,
    snapshot: snapshot && {
      historyLength: snapshot.historyLength,
      seq: snapshot.seq,
      reason: snapshot.reason,
      createdAt: snapshot.createdAt,
    },
  };
}

/** `value` if it is one of `known`, else an error naming `what`. */
export function knownValue<T extends string>(known: readonly T[], value: string, what: string): T {
  const found = known.find((k) => k === value);
  if (found === undefined) throw new Error(`${what} "${value}" is not one this build knows`);
  return found;
}
