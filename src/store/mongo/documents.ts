/**
 * Where MongoDB documents become store records and back (documents of the shapes both adapters
 * store alike map through ../stored-shapes.ts).
 *
 * Invariants:
 * - times are stored as numbers (epoch milliseconds), exactly as the port hands them over; the
 *   only BSON Date is the idempotency record's `purge_at`, which exists for the TTL index;
 * - maps whose keys the caller chooses (turn metadata, audit details) and model-visible messages
 *   are stored as JSON text, parsed here only: any key is safe (no `$` or `.` rules, no
 *   `undefined` turned into null), and they read back exactly as SQLite's JSON columns do;
 *   shapes the farm fixes (tools, usage, error, archive) are plain BSON values;
 * - a document that does not decode (unknown status or reason, malformed message) throws rather
 *   than handing a wrong-shaped record to the farm;
 * - `envelope` is passed through as the exact text stored, never re-serialised.
 */
import type { Types } from "mongoose";
import type { ContextMessage } from "../../context/message.js";
import {
  type ApprovalRecord,
  type ArtifactRecord,
  type AuditEntry,
  BUCKET_STATUSES,
  type BucketArchive,
  type BucketRecord,
  type SessionRecord,
  TURN_KINDS,
  TURN_STATUSES,
  type TurnError,
  type TurnRecord,
  type TurnUsage,
} from "../port.js";
import {
  type ApprovalFields,
  type ArtifactFields,
  approvalFromFields,
  artifactFromFields,
  type EventFields,
  historyMessageFromText,
  knownValue,
  type SessionFields,
  type SnapshotFields,
  sessionFromFields,
} from "../stored-shapes.js";

export type SessionDoc = WithMongoId<SessionFields>;

export type TurnDoc = {
  _id: string;
  session_id: string;
  user_id: string;
  status: string;
  /** Absent on turns stored before kinds existed: those are agent turns. */
  kind?: string;
  trace_id?: string | null;
  trace_parent?: string | null;
  input: string;
  model: string;
  tools: string[];
  /** JSON text, or null. */
  metadata: string | null;
  idempotency_key: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempt: number;
  answer: string | null;
  stop_reason: string | null;
  usage: TurnUsage | null;
  error: TurnError | null;
  first_seq: number | null;
  last_seq: number | null;
};

export type HistoryDoc = {
  session_id: string;
  idx: number;
  turn_id: string;
  /** One ContextMessage as JSON text. */
  message: string;
};

export type IdempotencyDoc = {
  user_id: string;
  key: string;
  request_hash: string;
  turn_id: string;
  created_at: number;
  /** What expiry is decided by: live while `expires_at > now`. */
  expires_at: number;
  /** The same instant as a Date, for the TTL index that removes records nobody purged. */
  purge_at: Date;
};

export type BucketDoc = {
  _id: string;
  start_ms: number;
  end_ms: number;
  status: string;
  events: number;
  archive: BucketArchive | null;
  restored_at: number | null;
  updated_at: number;
};

export type SessionBucketDoc = {
  /** `${session_id}:${bucket}` (bucket names hold no colon, so this is unambiguous). */
  _id: string;
  session_id: string;
  bucket: string;
  first_seq: number;
  last_seq: number;
};

export type EventDoc = EventFields;

export type SnapshotDoc = SnapshotFields;

export type ArtifactMetaDoc = WithMongoId<ArtifactFields>;

export type ArtifactDoc = ArtifactMetaDoc & { content: Buffer };

export type ApprovalDoc = WithMongoId<ApprovalFields>;

export type AuditDoc = {
  _id: Types.ObjectId;
  ts: number;
  actor: string;
  action: string;
  subject_type: string;
  subject_id: string;
  /** JSON text, or null. */
  details: string | null;
};

export function sessionFromDoc(doc: SessionDoc): SessionRecord {
  return sessionFromFields(withId(doc));
}

export function turnFromDoc(doc: TurnDoc): TurnRecord {
  return {
    id: doc._id,
    sessionId: doc.session_id,
    userId: doc.user_id,
    status: knownValue(TURN_STATUSES, doc.status, `turn ${doc._id} status`),
    kind: knownValue(TURN_KINDS, doc.kind ?? "agent", `turn ${doc._id} kind`),
    traceId: doc.trace_id ?? null,
    traceParent: doc.trace_parent ?? null,
    input: doc.input,
    model: doc.model,
    tools: [...doc.tools],
    metadata: parseJsonText<Record<string, unknown>>(doc.metadata),
    idempotencyKey: doc.idempotency_key ?? null,
    createdAt: doc.created_at,
    startedAt: doc.started_at ?? null,
    finishedAt: doc.finished_at ?? null,
    attempt: doc.attempt,
    answer: doc.answer ?? null,
    stopReason: doc.stop_reason ?? null,
    usage: doc.usage ?? null,
    error: doc.error ?? null,
    firstSeq: doc.first_seq ?? null,
    lastSeq: doc.last_seq ?? null,
  };
}

export function bucketFromDoc(doc: BucketDoc): BucketRecord {
  return {
    name: doc._id,
    startMs: doc.start_ms,
    endMs: doc.end_ms,
    status: knownValue(BUCKET_STATUSES, doc.status, `bucket ${doc._id} status`),
    events: doc.events,
    archive: doc.archive ?? null,
    restoredAt: doc.restored_at ?? null,
    updatedAt: doc.updated_at,
  };
}

export function historyMessageFromDoc(doc: Pick<HistoryDoc, "message">): ContextMessage {
  return historyMessageFromText(doc.message);
}

export function artifactFromDoc(doc: ArtifactMetaDoc): ArtifactRecord {
  return artifactFromFields(withId(doc));
}

/** Stored bytes come back from the driver as a BSON Binary (or a Buffer); always a Buffer here. */
export function bufferFromDoc(content: unknown): Buffer {
  if (Buffer.isBuffer(content)) return content;
  if (content instanceof Uint8Array) {
    return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  }
  const value = (content as { value?: () => unknown } | null)?.value?.();
  if (value instanceof Uint8Array) return bufferFromDoc(value);
  throw new Error("artifact content is not binary data");
}

export function approvalFromDoc(doc: ApprovalDoc): ApprovalRecord {
  return approvalFromFields(withId(doc));
}

export function auditFromDoc(doc: AuditDoc): AuditEntry {
  return {
    id: doc._id.toHexString(),
    ts: doc.ts,
    actor: doc.actor,
    action: doc.action,
    subjectType: doc.subject_type,
    subjectId: doc.subject_id,
    details: parseJsonText<Record<string, unknown>>(doc.details),
  };
}

/** Serialises a caller-shaped value; `null` stays null rather than the text "null". */
export function jsonText(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

function parseJsonText<T>(text: string | null | undefined): T | null {
  return text === null || text === undefined ? null : (JSON.parse(text) as T);
}

/** A stored shape keyed `_id` in MongoDB, `id` in the shared shape. */
type WithMongoId<T extends { id: string }> = Omit<T, "id"> & { _id: string };

function withId<T extends { id: string }>(doc: WithMongoId<T>): T {
  const { _id, ...rest } = doc;
  return { ...rest, id: _id } as unknown as T;
}
