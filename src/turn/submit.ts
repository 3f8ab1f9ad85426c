/**
 * Accepting a turn: validate what the schema cannot (model, tools), apply the idempotency key,
 * store the turn, announce it (`queued`) and admit it to the queue.
 *
 * Invariants:
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
import type { Admission } from "../queue/admission.js";
import type { Store, TurnRecord } from "../store/port.js";
import type { ToolCatalog } from "../tools/catalog.js";
import { eventTarget } from "./turnover.js";
import { turnLinks } from "./view.js";

export interface SubmitDeps {
  config: FarmConfig;
  store: Store;
  appender: EventAppender;
  admission: Admission;
  tools: ToolCatalog;
}

export interface SubmitResult {
  accepted: TurnAccepted;
  /** The turn as stored, with `firstSeq` known (its `queued` event is appended). */
  turn: TurnRecord;
  /** True when an earlier request with the same idempotency key produced this turn. */
  replayed: boolean;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

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
  request: SubmitTurnRequest,
  idempotencyKey: string | undefined,
  hooks: SubmitHooks = {},
): Promise<SubmitResult> {
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
  const unknownTools = (request.tools ?? []).filter((name) => !deps.tools.has(name));
  if (unknownTools.length > 0) {
    problems.push({
      field: "tools",
      code: "unknown_tool",
      message: `unknown tools: ${unknownTools.join(", ")}; available: ${deps.tools.names().join(", ")}`,
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
  const created = await deps.store.createTurn(
    {
      id: newTurnId(),
      sessionId: request.session_id ?? newSessionId(),
      userId,
      input: request.input,
      model,
      tools: request.tools ? deps.tools.normalize(request.tools) : deps.tools.names(),
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

  if (created.kind === "session_forbidden") {
    // Do not reveal that someone else's session exists.
    throw new FarmError(
      404,
      "not_found",
      `no session with id "${request.session_id}" for this user`,
    );
  }
  if (created.kind === "replayed" && created.requestHash !== requestHash) {
    throw new FarmError(
      422,
      "idempotency_key_reused",
      "this Idempotency-Key was already used with a different request body",
    );
  }
  const newSession = created.kind === "created" && created.sessionCreated;
  const turn =
    created.turn.status === "queued"
      ? await announceAndAdmit(deps, created.turn, newSession, created.kind === "replayed", hooks)
      : created.turn;
  return {
    turn,
    accepted: {
      turn_id: turn.id,
      session_id: turn.sessionId,
      status: turn.status,
      links: turnLinks(turn.id),
    },
    replayed: created.kind === "replayed",
  };
}

async function announceAndAdmit(
  deps: SubmitDeps,
  turn: TurnRecord,
  newSession: boolean,
  replayed: boolean,
  hooks: SubmitHooks,
): Promise<TurnRecord> {
  // Re-appending on a replay is harmless: the `queued` step key makes it a no-op.
  const { seqs, envelopes } = await deps.appender.appendWithEnvelopes(
    eventTarget(turn),
    [
      {
        type: "queued",
        step: "queued",
        ts: Date.now(),
        data: { model: turn.model, input_chars: turn.input.length },
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
  await deps.admission.admit(turn);
  return { ...turn, firstSeq: turn.firstSeq ?? seq };
}

/** Stable hash of the request as sent (key order does not matter). */
export function hashRequest(request: SubmitTurnRequest): string {
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
