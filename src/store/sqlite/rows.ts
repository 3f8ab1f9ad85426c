/**
 * Where SQLite rows of turns and buckets become store records and back (the rows both adapters
 * store alike — sessions, events, snapshots, artifacts, approvals — map in ../stored-shapes.ts).
 *
 * Invariants:
 * - JSON columns (tools, metadata, usage, error, archive) are serialised and parsed here only,
 *   once per row;
 * - a row that does not decode (unknown status) throws rather than handing a wrong-shaped record
 *   to the farm.
 */
import {
  BUCKET_STATUSES,
  type BucketArchive,
  type BucketRecord,
  TURN_KINDS,
  TURN_STATUSES,
  type TurnError,
  type TurnRecord,
  type TurnStatus,
  type TurnUsage,
} from "../port.js";
import { knownValue } from "../stored-shapes.js";

export interface TurnRow {
  id: string;
  session_id: string;
  user_id: string;
  status: string;
  kind: string;
  trace_id: string | null;
  trace_parent: string | null;
  input: string;
  model: string;
  tools: string;
  metadata: string | null;
  idempotency_key: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  attempt: number;
  answer: string | null;
  stop_reason: string | null;
  usage: string | null;
  error: string | null;
  first_seq: number | null;
  last_seq: number | null;
}

export interface BucketRow {
  name: string;
  start_ms: number;
  end_ms: number;
  status: string;
  events: number;
  archive: string | null;
  restored_at: number | null;
  updated_at: number;
}

export interface IdempotencyRow {
  request_hash: string;
  turn_id: string;
  expires_at: number;
}

export function turnFromRow(row: TurnRow): TurnRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    userId: row.user_id,
    status: turnStatus(row.status, row.id),
    kind: knownValue(TURN_KINDS, row.kind, `turn ${row.id} kind`),
    traceId: row.trace_id ?? null,
    traceParent: row.trace_parent ?? null,
    input: row.input,
    model: row.model,
    tools: JSON.parse(row.tools) as string[],
    metadata: parseNullable<Record<string, unknown>>(row.metadata),
    idempotencyKey: row.idempotency_key,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    attempt: row.attempt,
    answer: row.answer,
    stopReason: row.stop_reason,
    usage: parseNullable<TurnUsage>(row.usage),
    error: parseNullable<TurnError>(row.error),
    firstSeq: row.first_seq,
    lastSeq: row.last_seq,
  };
}

export function bucketFromRow(row: BucketRow): BucketRecord {
  const status = BUCKET_STATUSES.find((known) => known === row.status);
  if (status === undefined)
    throw new Error(`bucket ${row.name} has unknown status "${row.status}"`);
  return {
    name: row.name,
    startMs: row.start_ms,
    endMs: row.end_ms,
    status: knownValue(BUCKET_STATUSES, row.status, `bucket ${row.name} status`),
    events: row.events,
    archive: parseNullable<BucketArchive>(row.archive),
    restoredAt: row.restored_at,
    updatedAt: row.updated_at,
  };
}

/** Serialises a JSON column; `null` stays SQL NULL rather than the text "null". */
export function jsonColumn(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

export function parseNullable<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function turnStatus(value: string, turnId: string): TurnStatus {
  const status = TURN_STATUSES.find((known) => known === value);
  if (status === undefined) throw new Error(`turn ${turnId} has unknown status "${value}"`);
  return status;
}
