/**
 * Whether a new turn may enter the farm, decided before anything is stored: the farm is not
 * overloaded, the user's queue has room, and (with `on_busy: "reject"`) the session is idle.
 *
 * A pass takes a reservation (token with a TTL) on the user's queue and on the session, so
 * concurrent submits cannot all squeeze through the last free place, and a submit racing a
 * `reject` submit on the same session is seen by it. `admit` consumes the reservation; a submit
 * that fails before admission cancels it, and a crashed one lets it expire.
 *
 * A refused submit leaves nothing behind: no turn, no event, no idempotency record, so the
 * client retries the same request (same Idempotency-Key) after Retry-After.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { FarmConfig } from "../config/schema.js";
import { FarmError } from "../contract/errors.js";
import { admissionRejections } from "../obs/metrics.js";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";
import { commonArgs, FAIR_LUA_PRELUDE } from "./fair-lua.js";
import type { UserLimits } from "./tiers.js";

/** A reservation outlives any healthy submit (store write + one event append). */
const RESERVATION_TTL_MS = 30_000;

export const REJECTION_REASONS = [
  "user_queue_full",
  "session_busy",
  "overloaded_queue_depth",
  "overloaded_wait",
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

const RESERVE_LUA = `${FAIR_LUA_PRELUDE}
local u, s, token = ARGV[5], ARGV[6], ARGV[7]
local ttl, maxQueued, onBusy = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
local maxDepth, maxWaitMs = tonumber(ARGV[11]), tonumber(ARGV[12])
local function refuse(reason, detail)
  redis.call('HINCRBY', F .. 'rejected', reason, 1)
  return {reason, tostring(detail)}
end
local depth = redis.call('ZCARD', F .. 'waiting')
if depth >= maxDepth then return refuse('overloaded_queue_depth', depth) end
local oldest = redis.call('ZRANGE', F .. 'heads', 0, 0, 'WITHSCORES')
if #oldest > 0 and NOW - tonumber(oldest[2]) > maxWaitMs then
  return refuse('overloaded_wait', NOW - tonumber(oldest[2]))
end
local resv = F .. 'resv:' .. u
redis.call('ZREMRANGEBYSCORE', resv, '-inf', NOW)
local queued = redis.call('LLEN', qk(u)) + redis.call('ZCARD', resv)
if queued >= maxQueued then return refuse('user_queue_full', queued) end
if s ~= '' then
  local sresv = F .. 'sresv:' .. s
  redis.call('ZREMRANGEBYSCORE', sresv, '-inf', NOW)
  if onBusy == 'reject' then
    local blocker = redis.call('LINDEX', orderk(s), 0)
    if blocker then return refuse('session_busy', blocker) end
    if redis.call('ZCARD', sresv) > 0 then return refuse('session_busy', '') end
  end
  redis.call('ZADD', sresv, NOW + ttl, token)
  redis.call('PEXPIRE', sresv, ttl)
end
redis.call('ZADD', resv, NOW + ttl, token)
redis.call('PEXPIRE', resv, ttl)
return {'ok', token}
`;

export type OnBusy = "enqueue" | "reject";

export interface Reservation {
  token: string;
  userId: string;
  sessionId: string | null;
}

export class AdmissionGate {
  private readonly reserveScript: RedisScript<[string, string]>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly config: FarmConfig["scheduler"],
  ) {
    this.reserveScript = defineScript(redis, "farmFairReserve", 0, RESERVE_LUA);
  }

  /**
   * Reserves a place for one turn of the user (in the session, if it exists already), or throws
   * the FarmError the client gets: 503 overloaded, 429 user queue full, 409 session busy.
   */
  async reserve(
    limits: UserLimits & { userId: string },
    sessionId: string | null,
    onBusy: OnBusy,
  ): Promise<Reservation> {
    const token = randomUUID();
    const [verdict, detail] = await this.reserveScript(
      ...commonArgs(this.keys, this.config.maxRunningPerUser),
      limits.userId,
      sessionId ?? "",
      token,
      RESERVATION_TTL_MS,
      limits.maxQueued,
      onBusy,
      this.config.overloadQueueDepth,
      this.config.overloadWaitMs,
    );
    if (verdict === "ok") return { token, userId: limits.userId, sessionId };
    admissionRejections.inc({ reason: verdict });
    throw this.refusal(verdict as RejectionReason, detail, limits);
  }

  /** Gives an unused reservation back (the submit failed or turned out to be a replay). */
  async cancel(reservation: Reservation): Promise<void> {
    const pipeline = this.redis
      .multi()
      .zrem(`${this.keys.fairPrefix}resv:${reservation.userId}`, reservation.token);
    if (reservation.sessionId) {
      pipeline.zrem(`${this.keys.fairPrefix}sresv:${reservation.sessionId}`, reservation.token);
    }
    await pipeline.exec();
  }

  /** Farm-wide counts of refused submits by reason, since Redis last lost its data. */
  async rejectionCounts(): Promise<Record<RejectionReason, number>> {
    const raw = await this.redis.hgetall(`${this.keys.fairPrefix}rejected`);
    return Object.fromEntries(
      REJECTION_REASONS.map((reason) => [reason, Number(raw[reason] ?? 0)]),
    ) as Record<RejectionReason, number>;
  }

  private refusal(reason: RejectionReason, detail: string, limits: UserLimits): FarmError {
    const overload = this.config.overloadRetryAfterS;
    switch (reason) {
      case "user_queue_full":
        return new FarmError(
          429,
          "user_queue_full",
          `this user already has ${detail} turns waiting (limit ${limits.maxQueued}); retry after some finish`,
          {
            retryable: true,
            retryAfterS: this.config.userQueueFullRetryAfterS,
            details: { reason, queued: Number(detail), limit: limits.maxQueued },
          },
        );
      case "session_busy":
        return new FarmError(
          409,
          "session_busy",
          'the session already has a turn queued or running (on_busy: "reject")',
          { retryable: true, details: { reason, ...(detail ? { blocking_turn_id: detail } : {}) } },
        );
      case "overloaded_queue_depth":
        return new FarmError(
          503,
          "overloaded",
          `the farm is overloaded: ${detail} turns are waiting; retry later`,
          {
            retryable: true,
            retryAfterS: overload,
            details: { reason, queue_depth: Number(detail) },
          },
        );
      case "overloaded_wait":
        return new FarmError(
          503,
          "overloaded",
          `the farm is overloaded: a runnable turn has waited ${Math.round(Number(detail) / 1000)} s for a worker; retry later`,
          {
            retryable: true,
            retryAfterS: overload,
            details: { reason, oldest_wait_ms: Number(detail) },
          },
        );
    }
  }
}
