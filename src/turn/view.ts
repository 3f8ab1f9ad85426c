/**
 * The public view of a turn (GET /v1/turns/{id}) built from its stored record.
 */
import type { Redis } from "ioredis";
import type { TurnView } from "../contract/turns.js";
import type { RedisKeys } from "../redis/keys.js";
import { isTerminal, type TurnRecord } from "../store/port.js";

export function turnLinks(turnId: string) {
  const self = `/v1/turns/${turnId}`;
  return { self, events: `${self}/events`, cancel: `${self}/cancel` };
}

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString());

export function toTurnView(
  turn: TurnRecord,
  lastSeq: number,
  cancelRequested = false,
  queuePosition: number | null = null,
): TurnView {
  return {
    turn_id: turn.id,
    session_id: turn.sessionId,
    user_id: turn.userId,
    status: turn.status,
    kind: turn.kind,
    model: turn.model,
    created_at: new Date(turn.createdAt).toISOString(),
    ...(turn.startedAt !== null ? { started_at: iso(turn.startedAt) } : {}),
    ...(turn.finishedAt !== null ? { finished_at: iso(turn.finishedAt) } : {}),
    attempt: turn.attempt,
    ...(turn.answer !== null ? { answer: turn.answer } : {}),
    ...(turn.stopReason !== null ? { stop_reason: turn.stopReason } : {}),
    ...(turn.usage ? { usage: turn.usage } : {}),
    ...(turn.error ? { error: turn.error } : {}),
    ...(cancelRequested && !isTerminal(turn.status) ? { cancel_requested: true } : {}),
    ...(turn.status === "queued" && queuePosition !== null
      ? { queue_position: queuePosition }
      : {}),
    last_seq: lastSeq,
    ...(turn.traceId ? { trace_id: turn.traceId } : {}),
    links: turnLinks(turn.id),
  };
}

/**
 * The newest seq of a turn, when known: stored once its terminal event is persisted, before that
 * the live counter kept with its steps (which expires a minute after the turn ends).
 */
export async function knownLastSeq(
  redis: Redis,
  keys: RedisKeys,
  turn: TurnRecord,
): Promise<number | null> {
  if (turn.lastSeq !== null) return turn.lastSeq;
  const live = await redis.hget(keys.turnSteps(turn.id), "_last");
  return live !== null ? Number.parseInt(live, 10) : null;
}

/** `last_seq` as the API shows it: the newest known seq, else where the turn starts. */
export async function turnLastSeq(
  redis: Redis,
  keys: RedisKeys,
  turn: TurnRecord,
): Promise<number> {
  return (await knownLastSeq(redis, keys, turn)) ?? turn.firstSeq ?? 0;
}

/** True when the turn has ended and its last event is known to be at or before `cursor`. */
export async function turnEndedBy(
  redis: Redis,
  keys: RedisKeys,
  turn: TurnRecord,
  cursor: number,
): Promise<boolean> {
  if (!isTerminal(turn.status)) return false;
  const last = await knownLastSeq(redis, keys, turn);
  return last !== null && cursor >= last;
}
