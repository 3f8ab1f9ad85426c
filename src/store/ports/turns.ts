/**
 * Port part: sessions, turns, submit idempotency records and each session's model-visible
 * history (the items a turn appends when it ends).
 *
 * Contract (besides the general one in ../port.ts):
 * - `createTurn` is atomic: session, turn and idempotency record are written together or not at all;
 * - a turn's status only moves forward (queued → running → terminal); `finishTurn` on a terminal
 *   turn changes nothing and returns false;
 * - history items of a session are numbered 0, 1, 2… in the order turns appended them.
 */
import type { ContextMessage } from "../../context/message.js";

export const TERMINAL_TURN_STATUSES = ["completed", "failed", "cancelled"] as const;
export const TURN_STATUSES = [
  "queued",
  "running",
  "waiting_approval",
  ...TERMINAL_TURN_STATUSES,
] as const;
export type TurnStatus = (typeof TURN_STATUSES)[number];
export type TerminalTurnStatus = (typeof TERMINAL_TURN_STATUSES)[number];

export function isTerminal(status: TurnStatus): status is TerminalTurnStatus {
  return (TERMINAL_TURN_STATUSES as readonly string[]).includes(status);
}

/**
 * A turn's tokens, split in two (docs/context.md): *consumption* (`input_tokens`,
 * `output_tokens`, `total_tokens`: billed across every model call of the turn, the summary calls
 * of its compactions included) and *occupancy* (`context_tokens`: how full the model's window
 * was after the turn's last call, its prompt plus its answer). The optional fields are absent
 * from turns recorded before they existed.
 */
export interface TurnUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  context_tokens: number;
  /** The model's window that `context_tokens` fills. */
  context_window_tokens?: number;
  /** Model calls billed: the turn's rounds plus its compaction summary calls. */
  model_calls?: number;
  /** Of `total_tokens`, what the compaction summary calls used. */
  compaction_tokens?: number;
}

/** What a session consumed: the sums of its ended turns' usage. */
export interface SessionUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  /** Ended turns that reported usage (the sums cover these). */
  turns: number;
}

export interface TurnError {
  code: string;
  message: string;
  retryable: boolean;
}

/**
 * What a turn does: `agent` runs the agent loop on its input; `compaction` compacts the
 * session's context on demand (POST /v1/sessions/{id}/compaction) and has no input.
 */
export const TURN_KINDS = ["agent", "compaction"] as const;
export type TurnKind = (typeof TURN_KINDS)[number];

export interface SessionRecord {
  id: string;
  userId: string;
  createdAt: number;
  updatedAt: number;
}

export interface TurnRecord {
  id: string;
  sessionId: string;
  userId: string;
  status: TurnStatus;
  kind: TurnKind;
  /** The W3C trace id of the request that submitted the turn (logs and events carry it). */
  traceId: string | null;
  /**
   * The submitting caller's W3C `traceparent` (version 00), when it sent one: the worker's spans
   * of the turn become children of the caller's span.
   */
  traceParent: string | null;
  input: string;
  model: string;
  tools: string[];
  metadata: Record<string, unknown> | null;
  idempotencyKey: string | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** How many times a worker has started this turn (more than 1 after a crash or hand-back). */
  attempt: number;
  answer: string | null;
  stopReason: string | null;
  usage: TurnUsage | null;
  error: TurnError | null;
  /**
   * Lower bound of the turn's event seqs: 1 for a turn that created its session (nothing came
   * before it), else the seq of its `queued` event once that is appended.
   */
  firstSeq: number | null;
  /** Seq of the turn's `turn_terminal` event, once that event is stored. */
  lastSeq: number | null;
}

/** A position in (createdAt, id) order, for paging through turns. */
export interface TurnCursor {
  createdAt: number;
  id: string;
}

export interface NewTurn {
  id: string;
  sessionId: string;
  userId: string;
  /** `agent` when absent. */
  kind?: TurnKind;
  traceId?: string | null;
  traceParent?: string | null;
  input: string;
  model: string;
  tools: string[];
  metadata: Record<string, unknown> | null;
  createdAt: number;
}

export interface IdempotencyClaim {
  key: string;
  /** Hash of the canonical request body; a different hash under the same key is a mismatch. */
  requestHash: string;
  expiresAt: number;
}

export type CreateTurnResult =
  | { kind: "created"; turn: TurnRecord; sessionCreated: boolean }
  /** The idempotency key was already used by this user; `turn` is the turn it produced. */
  | { kind: "replayed"; turn: TurnRecord; requestHash: string }
  /** The session exists and belongs to another user. */
  | { kind: "session_forbidden" };

export interface TurnOutcome {
  status: TerminalTurnStatus;
  finishedAt: number;
  answer: string | null;
  stopReason: string | null;
  usage: TurnUsage | null;
  error: TurnError | null;
}

export interface TurnStore {
  getSession(id: string): Promise<SessionRecord | null>;

  createTurn(turn: NewTurn, idempotency: IdempotencyClaim | null): Promise<CreateTurnResult>;
  /** The turn a live idempotency key of the user produced, with the hash of its request. */
  findIdempotentTurn(
    userId: string,
    key: string,
    now: number,
  ): Promise<{ turn: TurnRecord; requestHash: string } | null>;
  getTurn(id: string): Promise<TurnRecord | null>;
  setTurnFirstSeq(id: string, seq: number): Promise<void>;
  /** queued/running/waiting_approval → running, attempt + 1, startedAt kept from the first start. Null if terminal or unknown. */
  markTurnRunning(id: string, now: number): Promise<TurnRecord | null>;
  /**
   * Ends a non-terminal turn and appends its items to the session's model-visible history,
   * in one transaction. Returns false (and writes nothing) if the turn was already terminal.
   */
  finishTurn(id: string, outcome: TurnOutcome, history: ContextMessage[]): Promise<boolean>;
  /** The session's most recent turns, newest first. */
  listSessionTurns(sessionId: string, limit: number): Promise<TurnRecord[]>;
  /** The session's consumption: every ended turn's usage summed (zeros for none or unknown). */
  sessionUsage(sessionId: string): Promise<SessionUsage>;
  /** Non-terminal turns created before `before`, oldest first (used by the reconciler). */
  listStaleTurns(before: number, limit: number, after?: TurnCursor): Promise<TurnRecord[]>;

  /** The session's whole model-visible history, oldest first (no snapshot involved). */
  loadHistory(sessionId: string): Promise<ContextMessage[]>;

  /** Removes idempotency records expired at `now`; returns how many. */
  purgeExpiredIdempotency(now: number): Promise<number>;
}
