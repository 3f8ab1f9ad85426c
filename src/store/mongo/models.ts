/**
 * The MongoDB collections of the store (except the per-bucket event collections, see
 * event-buckets.ts), as mongoose schemas and models on one connection, with their indexes.
 *
 * Invariants:
 * - collection names are explicit and documents carry no version key and no automatic
 *   timestamps: the documents are exactly the shapes in documents.ts;
 * - `_id` is the record's own id wherever it has one (sessions, turns, buckets, artifacts,
 *   approvals), so the primary key is the uniqueness guarantee; the audit log keeps MongoDB's
 *   ObjectId, whose hex form is the id handed out;
 * - at most one live record per (user, idempotency key) is enforced by a unique index on
 *   `idempotency`; a TTL index on its `purge_at` removes records nobody purged (expiry itself is
 *   decided on `expires_at`, so a record past it counts as absent before the TTL monitor runs);
 * - collections and indexes are made by `ensureIndexes` once when a store opens (autoIndex and
 *   autoCreate are off).
 */
import { type Connection, Schema } from "mongoose";
import type {
  ApprovalDoc,
  ArtifactDoc,
  AuditDoc,
  BucketDoc,
  HistoryDoc,
  IdempotencyDoc,
  SessionBucketDoc,
  SessionDoc,
  SnapshotDoc,
  TurnDoc,
} from "./documents.js";

export const COLLECTIONS = {
  sessions: "sessions",
  turns: "turns",
  history: "session_history",
  idempotency: "idempotency",
  buckets: "event_buckets",
  sessionBuckets: "session_buckets",
  snapshots: "session_snapshots",
  artifacts: "artifacts",
  approvals: "approvals",
  audit: "audit_log",
} as const;

/** Plain options (no annotation, so each schema checks them against its own document type). */
function optionsFor(collection: string) {
  return {
    collection,
    versionKey: false,
    timestamps: false,
    minimize: false,
    id: false,
    autoIndex: false,
    autoCreate: false,
  } as const;
}

const nullableString = { type: String, default: null };
const nullableNumber = { type: Number, default: null };
const nullableMixed = { type: Schema.Types.Mixed, default: null };

const sessionSchema = new Schema<SessionDoc>(
  { _id: String, user_id: String, created_at: Number, updated_at: Number },
  optionsFor(COLLECTIONS.sessions),
);

const turnSchema = new Schema<TurnDoc>(
  {
    _id: String,
    session_id: String,
    user_id: String,
    status: String,
    kind: { type: String, default: "agent" },
    trace_id: nullableString,
    trace_parent: nullableString,
    input: String,
    model: String,
    tools: [String],
    metadata: nullableString,
    idempotency_key: nullableString,
    created_at: Number,
    started_at: nullableNumber,
    finished_at: nullableNumber,
    attempt: Number,
    answer: nullableString,
    stop_reason: nullableString,
    usage: nullableMixed,
    error: nullableMixed,
    first_seq: nullableNumber,
    last_seq: nullableNumber,
  },
  optionsFor(COLLECTIONS.turns),
);
// The reconciler's scan (non-terminal turns by age) and a session's turn list, newest first.
turnSchema.index({ status: 1, created_at: 1 });
turnSchema.index({ session_id: 1, created_at: -1 });
// Finding the turns a key produced. Not unique: an expired key may be used again by a new turn
// (uniqueness of live keys is the `idempotency` collection's job).
turnSchema.index(
  { user_id: 1, idempotency_key: 1 },
  { partialFilterExpression: { idempotency_key: { $type: "string" } } },
);

const historySchema = new Schema<HistoryDoc>(
  { session_id: String, idx: Number, turn_id: String, message: String },
  optionsFor(COLLECTIONS.history),
);
historySchema.index({ session_id: 1, idx: 1 }, { unique: true });

const idempotencySchema = new Schema<IdempotencyDoc>(
  {
    user_id: String,
    key: String,
    request_hash: String,
    turn_id: String,
    created_at: Number,
    expires_at: Number,
    purge_at: Date,
  },
  optionsFor(COLLECTIONS.idempotency),
);
idempotencySchema.index({ user_id: 1, key: 1 }, { unique: true });
idempotencySchema.index({ expires_at: 1 });
idempotencySchema.index({ purge_at: 1 }, { expireAfterSeconds: 0 });

const bucketSchema = new Schema<BucketDoc>(
  {
    _id: String,
    start_ms: Number,
    end_ms: Number,
    status: String,
    events: Number,
    archive: nullableMixed,
    restored_at: nullableNumber,
    updated_at: Number,
  },
  optionsFor(COLLECTIONS.buckets),
);

const sessionBucketSchema = new Schema<SessionBucketDoc>(
  { _id: String, session_id: String, bucket: String, first_seq: Number, last_seq: Number },
  optionsFor(COLLECTIONS.sessionBuckets),
);
sessionBucketSchema.index({ session_id: 1, first_seq: 1 });

const snapshotSchema = new Schema<SnapshotDoc>(
  {
    session_id: String,
    history_length: Number,
    seq: Number,
    reason: String,
    messages: String,
    created_at: Number,
  },
  optionsFor(COLLECTIONS.snapshots),
);
snapshotSchema.index({ session_id: 1, history_length: 1 }, { unique: true });

const artifactSchema = new Schema<ArtifactDoc>(
  {
    _id: String,
    session_id: String,
    turn_id: nullableString,
    user_id: String,
    kind: String,
    name: String,
    content_type: String,
    size_bytes: Number,
    sha256: String,
    content: Buffer,
    created_at: Number,
  },
  optionsFor(COLLECTIONS.artifacts),
);
artifactSchema.index({ session_id: 1, created_at: 1 });

const approvalSchema = new Schema<ApprovalDoc>(
  {
    _id: String,
    turn_id: String,
    session_id: String,
    user_id: String,
    tool_name: String,
    tool_call_id: String,
    arguments: String,
    reason: nullableString,
    status: String,
    requested_at: Number,
    expires_at: Number,
    decided_at: nullableNumber,
    decided_by: nullableString,
    note: nullableString,
  },
  optionsFor(COLLECTIONS.approvals),
);
approvalSchema.index({ turn_id: 1, requested_at: 1 });

const auditSchema = new Schema<AuditDoc>(
  {
    ts: Number,
    actor: String,
    action: String,
    subject_type: String,
    subject_id: String,
    details: nullableString,
  },
  optionsFor(COLLECTIONS.audit),
);
auditSchema.index({ subject_id: 1, _id: 1 });

export type MongoModels = ReturnType<typeof createModels>;

/** The store's models on `connection` (each connection has its own). */
export function createModels(connection: Connection) {
  return {
    sessions: connection.model<SessionDoc>("Session", sessionSchema),
    turns: connection.model<TurnDoc>("Turn", turnSchema),
    history: connection.model<HistoryDoc>("SessionHistory", historySchema),
    idempotency: connection.model<IdempotencyDoc>("Idempotency", idempotencySchema),
    buckets: connection.model<BucketDoc>("EventBucket", bucketSchema),
    sessionBuckets: connection.model<SessionBucketDoc>("SessionBucket", sessionBucketSchema),
    snapshots: connection.model<SnapshotDoc>("SessionSnapshot", snapshotSchema),
    artifacts: connection.model<ArtifactDoc>("Artifact", artifactSchema),
    approvals: connection.model<ApprovalDoc>("Approval", approvalSchema),
    audit: connection.model<AuditDoc>("AuditEntry", auditSchema),
  };
}

/**
 * Creates every collection and its indexes; idempotent (an existing collection or index is
 * left as it is). Collections are created explicitly, not by their first insert, because that
 * insert may run inside a transaction, where creating a collection is restricted.
 */
export async function ensureIndexes(models: MongoModels): Promise<void> {
  await Promise.all(
    Object.values(models).map(async (model) => {
      await model.createCollection();
      await model.createIndexes();
    }),
  );
}
