/**
 * Accepting a turn: validate what the schema cannot (model, tools), apply the idempotency key,
 * pass the admission gate (overload, user queue, busy session), store the turn, announce it
 * (`queued`) and admit it to the fair scheduler.
 *
 * Invariants:
 * - a replay (same key, same body) never meets the gate: its turn was accepted already;
 * - a refused submit stores nothing, so its retry with the same key is judged afresh;
 * - one idempotency key of one user yields one turn, also when requests race (the store's
 *   unique key decides); the same key with another payload is refused with 422;
 * - every step after the store write is idempotent, and a replayed request re-runs them for a
 *   turn that is still queued, so a submit that died half-way is completed by its retry.
 */
import { createHash } from "node:crypto";
import type { FarmConfig } from "../config/schema.js";
import { FarmError, validationError } from "../contract/errors.js";
import { ANONYMOUS_USER, newSessionId, newTurnId } from "../contract/ids.js";
import type { SubmitTurnRequest, TurnAccepted } from "../contract/turns.js";
import type { EventAppender } from "../events/appender.js";
import type { LogEvent } from "../events/event-log.js";
import type { Admission } from "../scheduler/admission.js";
import type { Reservation } from "../scheduler/admission-gate.js";
import type { Store, TurnKind, TurnRecord } from "../store/port.js";
import type { ToolDirectory } from "../tools/catalog-board.js";
import { eventTarget } from "./turnover.js";
import { turnLinks } from "./view.js";

export interface SubmitDeps {
  config: FarmConfig;
  store: Store;
  appender: EventAppender;
  admission: Admission;
  tools: ToolDirectory;
}

/** A turn to accept: a client's turn, or a compaction the API asks for (no input, no tools). */
export type TurnSubmission = SubmitTurnRequest & { kind?: TurnKind };

export interface SubmitResult {
  accepted: TurnAccepted;
  /** The turn as stored, with `firstSeq` known (its `queued` event is appended). */
  turn: TurnRecord;
  /** True when an earlier request with the same idempotency key produced this turn. */
  replayed: boolean;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** How a submit arrived: its idempotency key, its trace, and who wants to hear of it. */
export interface SubmitOptions {
  idempotencyKey?: string;
  /** The request's W3C trace id: stored with the turn, carried by its events and log lines. */
  traceId?: string;
  /** The caller's `traceparent`, when it sent one: the worker's spans hang under its span. */
  traceParent?: string;
  hooks?: SubmitHooks;
}

export interface SubmitHooks {
  /**
   * Called as soon as the turn's `queued` event is appended, before the turn is admitted to the
   * queue — so a streaming client gets its first event without waiting for admission. Not
   * called when the event was appended by an earlier request (a replay).
   */
  onQueued?(turn: TurnRecord, event: LogEvent, replayed: boolean): void;
}

export async function submitTurn(
  deps: SubmitDeps,
  request: TurnSubmission,
  options: SubmitOptions = {},
): Promise<SubmitResult> {
  const { idempotencyKey, hooks = {} } = options;
  const model = request.model ?? deps.config.turn.defaultModel;
  const problems = [];
  if (!Object.hasOwn(deps.config.models, model)) {
    const known = Object.keys(deps.config.models).join(", ");
    problems.push({
      field: "model",
      code: "unknown_model",
      message: `unknown model "${model}"; configured: ${known}`,
    });
  }
  const tools = await deps.tools.normalize(request.tools ?? []);
  if (tools.unknown.length > 0) {
    problems.push({
      field: "tools",
      code: "unknown_tool",
      message: `unknown tools: ${tools.unknown.join(", ")}; see GET /v1/tools for the tools available`,
    });
  }
  if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    problems.push({
      field: "Idempotency-Key",
      code: "invalid_header",
      message: "must be 1–255 printable ASCII characters",
    });
  }
  if (problems.length > 0) throw validationError(problems);

  const userId = request.user_id ?? ANONYMOUS_USER;
  const requestHash = hashRequest(request);
  const now = Date.now();
  if (idempotencyKey !== undefined) {
    const earlier = await deps.store.findIdempotentTurn(userId, idempotencyKey, now);
    if (earlier) return replay(deps, earlier.turn, earlier.requestHash === requestHash, hooks);
  }
  const sessionId = request.session_id ?? null;
  if (sessionId !== null) {
    const session = await deps.store.getSession(sessionId);
    if (session && session.userId !== userId) throw sessionNotFound(sessionId);
    // Only an agent turn may start a session: there is nothing to compact in a new one.
    if (!session && request.kind === "compaction") throw sessionNotFound(sessionId);
  }
  const reservation = await deps.admission.reserve(userId, sessionId, request.on_busy ?? "enqueue");
  try {
    const created = await deps.store.createTurn(
      {
        id: newTurnId(),
        sessionId: sessionId ?? newSessionId(),
        userId,
        ...(request.kind ? { kind: request.kind } : {}),
        traceId: options.traceId ?? null,
        traceParent: options.traceParent ?? null,
        input: request.input,
        model,
        tools: request.tools ? tools.names : (await deps.tools.view()).tools.map((t) => t.name),
        metadata: request.metadata ?? null,
        createdAt: now,
      },
      idempotencyKey
        ? {
            key: idempotencyKey,
            requestHash,
            expiresAt: now + deps.config.api.idempotencyTtlS * 1000,
          }
        : null,
    );
    if (created.kind === "session_forbidden") throw sessionNotFound(sessionId ?? "");
    if (created.kind === "replayed") {
      await deps.admission.cancelReservation(reservation);
      return replay(deps, created.turn, created.requestHash === requestHash, hooks);
    }
    const turn = await announceAndAdmit(deps, created.turn, created.sessionCreated, false, hooks, {
      reservation,
    });
    return { turn, accepted: acceptedOf(turn), replayed: false };
  } catch (err) {
    // The reservation is consumed by a successful admit; otherwise give the place back.
    await deps.admission.cancelReservation(reservation).catch(() => undefined);
    throw err;
  }
}

/** An earlier request with this idempotency key made `turn`: answer as that request did. */
async function replay(
  deps: SubmitDeps,
  turn: TurnRecord,
  sameRequest: boolean,
  hooks: SubmitHooks,
): Promise<SubmitResult> {
  if (!sameRequest) {
    throw new FarmError(
      422,
      "idempotency_key_reused",
      "this Idempotency-Key was already used with a different request body",
    );
  }
  // A turn still queued may come from a request that died before admitting it: finish the job.
  const current =
    turn.status === "queued" ? await announceAndAdmit(deps, turn, false, true, hooks, {}) : turn;
  return { turn: current, accepted: acceptedOf(current), replayed: true };
}

function acceptedOf(turn: TurnRecord): TurnAccepted {
  return {
    turn_id: turn.id,
    session_id: turn.sessionId,
    status: turn.status,
    links: turnLinks(turn.id),
  };
}

function sessionNotFound(sessionId: string): FarmError {
  // Do not reveal that someone else's session exists.
  return new FarmError(404, "not_found", `no session with id "${sessionId}" for this user`);
}

async function announceAndAdmit(
  deps: SubmitDeps,
  turn: TurnRecord,
  newSession: boolean,
  replayed: boolean,
  hooks: SubmitHooks,
  admission: { reservation?: Reservation },
): Promise<TurnRecord> {
  // Re-appending on a replay is harmless: the `queued` step key makes it a no-op.
  const { seqs, envelopes } = await deps.appender.appendWithEnvelopes(
    eventTarget(turn),
    [
      {
        type: "queued",
        step: "queued",
        ts: Date.now(),
        data: { model: turn.model, kind: turn.kind, input_chars: turn.input.length },
      },
    ],
    { newSession },
  );
  const seq = seqs[0] as number;
  if (turn.firstSeq === null) await deps.store.setTurnFirstSeq(turn.id, seq);
  const envelope = envelopes[0];
  if (envelope) {
    hooks.onQueued?.(turn, { seq, turnId: turn.id, type: "queued", envelope }, replayed);
  }
  await deps.admission.admit(turn, admission.reservation);
  return { ...turn, firstSeq: turn.firstSeq ?? seq };
}

/** Stable hash of the request as sent (key order does not matter). */
export function hashRequest(request: TurnSubmission): string {
  return createHash("sha256").update(canonicalJson(request)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}
