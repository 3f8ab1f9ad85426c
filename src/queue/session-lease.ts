/**
 * One running turn per session, in submission order.
 *
 * A session's non-terminal turns wait in its order list (oldest first; the fair scheduler's
 * admit appends to it); only the head may take the session lease. The lease (`<turn>:<token>`, with a TTL renewed by the runner) fences event
 * appends, so a worker that lost its turn cannot write after the new owner.
 *
 * Invariants:
 * - acquire succeeds only for the head of the order list, and only if the lease is free or held
 *   by an earlier attempt of the same turn (a dead or stalled worker: the new attempt takes over);
 * - a cancel flag set before acquire wins: the turn never starts;
 * - release removes the lease only if the caller still holds it (or, called without a lease for
 *   a turn that has ended, if any attempt of that turn holds it), and (unless the turn is handed
 *   back) drops the turn from the order list, returning the next head so it can be woken.
 */
import type { Redis } from "ioredis";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";

const ACQUIRE_LUA = `
if redis.call('EXISTS', KEYS[3]) == 1 then return {'cancelled'} end
local head = redis.call('LINDEX', KEYS[2], 0)
if head and head ~= ARGV[1] then return {'waiting', head} end
local holder = redis.call('GET', KEYS[1])
if holder and string.sub(holder, 1, #ARGV[1] + 1) ~= ARGV[1] .. ':' then
  return {'waiting', string.match(holder, '^[^:]*')}
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return {'acquired'}
`;

const RENEW_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'lost' end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
if redis.call('EXISTS', KEYS[2]) == 1 then return 'cancel' end
return 'held'
`;

/**
 * Lua defining `releaseSession(leaseKey, orderKey, lease, turn, keep)`: the one definition of
 * releasing, shared with the fair scheduler's end-of-turn script (src/scheduler/fair-queue.ts).
 * Returns the session's next head turn, if any.
 */
export const RELEASE_SESSION_LUA_FN = `
local function releaseSession(leaseKey, orderKey, lease, turn, keep)
  local holder = redis.call('GET', leaseKey)
  if holder and (holder == lease or
      (lease == '' and string.sub(holder, 1, #turn + 1) == turn .. ':')) then
    redis.call('DEL', leaseKey)
  end
  if not keep then redis.call('LREM', orderKey, 0, turn) end
  return redis.call('LINDEX', orderKey, 0)
end
`;

const RELEASE_LUA = `${RELEASE_SESSION_LUA_FN}
return releaseSession(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3] == 'keep')
`;

export type AcquireResult =
  | { kind: "acquired"; lease: string }
  | { kind: "cancelled" }
  /** Another turn (`blocker`) runs or is ahead in the session's order. */
  | { kind: "waiting"; blocker: string };

export type RenewResult = "held" | "lost" | "cancel";

export class SessionLeases {
  private readonly acquireScript: RedisScript<string[]>;
  private readonly renewScript: RedisScript<RenewResult>;
  private readonly releaseScript: RedisScript<string | null>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlMs: number,
  ) {
    this.acquireScript = defineScript(redis, "farmLeaseAcquire", 3, ACQUIRE_LUA);
    this.renewScript = defineScript(redis, "farmLeaseRenew", 2, RENEW_LUA);
    this.releaseScript = defineScript(redis, "farmLeaseRelease", 2, RELEASE_LUA);
  }

  /** The current lease value of the session (`<turn>:<token>`), or null when free. */
  async holder(sessionId: string): Promise<string | null> {
    return this.redis.get(this.keys.sessionLease(sessionId));
  }

  async acquire(sessionId: string, turnId: string, token: string): Promise<AcquireResult> {
    const k = this.keys;
    const reply = await this.acquireScript(
      k.sessionLease(sessionId),
      k.sessionOrder(sessionId),
      k.turnCancel(turnId),
      turnId,
      token,
      this.ttlMs,
    );
    if (reply[0] === "acquired") return { kind: "acquired", lease: `${turnId}:${token}` };
    if (reply[0] === "cancelled") return { kind: "cancelled" };
    return { kind: "waiting", blocker: reply[1] ?? "" };
  }

  async renew(sessionId: string, turnId: string, lease: string): Promise<RenewResult> {
    return this.renewScript(
      this.keys.sessionLease(sessionId),
      this.keys.turnCancel(turnId),
      lease,
      this.ttlMs,
    );
  }

  /**
   * Frees the session for its next turn and returns that turn's id (or null).
   * `lease` is null for a turn that ended without this caller holding its lease (cancelled while
   * queued, failed for good, found stale): any lease an attempt of it still holds is dropped.
   * With `handBack`, the turn keeps its place at the head so it resumes before anything else.
   */
  async release(
    sessionId: string,
    turnId: string,
    lease: string | null,
    handBack = false,
  ): Promise<string | null> {
    return this.releaseScript(
      this.keys.sessionLease(sessionId),
      this.keys.sessionOrder(sessionId),
      lease ?? "",
      turnId,
      handBack ? "keep" : "drop",
    );
  }
}
