/**
 * The per-user FIFOs of the fair scheduler: admitting a turn, taking a waiting turn back out
 * (cancel), and ending a turn (its session and its user's running slot, in one script). Dispatch lives in
 * dispatcher.ts; the layout and the readiness invariant in fair-lua.ts.
 *
 * Invariants:
 * - `admit` is idempotent: a turn already waiting or dispatched is not queued again, so a
 *   retried submit or a repair can call it freely; it also puts the turn in its session's order
 *   in the same script, so user order and session order never disagree (a turn re-admitted
 *   while still in its session's order goes before that session's later turns in the FIFO);
 * - `endTurn` and `freeSlot` are idempotent and safe on every ending path (completed, failed,
 *   cancelled, given up by BullMQ, found stale): a slot is freed once, and a turn that never
 *   ran is simply gone.
 */
import type { Redis } from "ioredis";
import { RELEASE_SESSION_LUA_FN } from "../queue/session-lease.js";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";
import { commonArgs, FAIR_LUA_PRELUDE } from "./fair-lua.js";
import type { UserLimits } from "./tiers.js";

const ADMIT_LUA = `${FAIR_LUA_PRELUDE}
local t, u, s = ARGV[5], ARGV[6], ARGV[7]
local token = ARGV[10]
if token ~= '' then
  redis.call('ZREM', F .. 'resv:' .. u, token)
  redis.call('ZREM', F .. 'sresv:' .. s, token)
end
if redis.call('HEXISTS', F .. 'meta', t) == 1 or redis.call('SISMEMBER', rk(u), t) == 1 then
  return 0
end
local at = redis.call('LPOS', orderk(s), t)
local placed = false
if at then
  -- Back in the scheduler (a repair): it keeps its place in its session, so it must also come
  -- before that session's later turns in the user's FIFO, or the FIFO head would wait on it.
  for _, later in ipairs(redis.call('LRANGE', orderk(s), at + 1, -1)) do
    if redis.call('LINSERT', qk(u), 'BEFORE', later, t) > 0 then
      placed = true
      break
    end
  end
else
  redis.call('RPUSH', orderk(s), t)
end
if not placed then redis.call('RPUSH', qk(u), t) end
local headMoved = placed or redis.call('LINDEX', qk(u), 0) == t
redis.call('HSET', F .. 'meta', t, u .. ' ' .. s)
redis.call('ZADD', F .. 'waiting', NOW, t)
redis.call('ZINCRBY', F .. 'backlog', 1, u)
redis.call('HSET', F .. 'weight', u, ARGV[8])
redis.call('HSET', F .. 'cap', u, ARGV[9])
settle(u, headMoved)
return 1
`;

const WITHDRAW_LUA = `${FAIR_LUA_PRELUDE}
local t, u = ARGV[5], ARGV[6]
if redis.call('LREM', qk(u), 0, t) == 0 then return 0 end
redis.call('ZREM', F .. 'waiting', t)
redis.call('HDEL', F .. 'meta', t)
bump(F .. 'backlog', u, -1)
settle(u, true)
return 1
`;

// ARGV: turn, user, session ('' when unknown), lease ('' when the caller holds none).
const RELEASE_LUA = `${FAIR_LUA_PRELUDE}${RELEASE_SESSION_LUA_FN}
local t, u, s = ARGV[5], ARGV[6], ARGV[7]
if s ~= '' then releaseSession(S .. s .. ':lease', orderk(s), ARGV[8], t, false) end
local freed = redis.call('SREM', rk(u), t)
if freed == 1 then
  bump(F .. 'running', u, -1)
elseif redis.call('LREM', qk(u), 0, t) > 0 then
  -- Ended while still waiting (a repair, a cancel racing dispatch): leave the FIFO too.
  redis.call('ZREM', F .. 'waiting', t)
  bump(F .. 'backlog', u, -1)
end
redis.call('HDEL', F .. 'meta', t)
settle(u, true)
return freed
`;

/** Recomputes a user's counters from its FIFO and slot set, then its readiness (repair). */
const RECOUNT_LUA = `${FAIR_LUA_PRELUDE}
local u = ARGV[5]
local running, waiting = redis.call('SCARD', rk(u)), redis.call('LLEN', qk(u))
if running > 0 then redis.call('ZADD', F .. 'running', running, u) else redis.call('ZREM', F .. 'running', u) end
if waiting > 0 then redis.call('ZADD', F .. 'backlog', waiting, u) else redis.call('ZREM', F .. 'backlog', u) end
settle(u, true)
return 1
`;

/** Where a turn is in the scheduler: waiting in its FIFO, dispatched (holding a slot), or unknown. */
export type SchedulerState = "waiting" | "running" | "unknown";

export interface TurnRef {
  id: string;
  sessionId: string;
  userId: string;
}

export class FairQueue {
  private readonly admitScript: RedisScript<number>;
  private readonly withdrawScript: RedisScript<number>;
  private readonly releaseScript: RedisScript<number>;
  private readonly recountScript: RedisScript<number>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly defaultCap: number,
  ) {
    this.admitScript = defineScript(redis, "farmFairAdmit", 0, ADMIT_LUA);
    this.withdrawScript = defineScript(redis, "farmFairWithdraw", 0, WITHDRAW_LUA);
    this.releaseScript = defineScript(redis, "farmFairRelease", 0, RELEASE_LUA);
    this.recountScript = defineScript(redis, "farmFairRecount", 0, RECOUNT_LUA);
  }

  /**
   * Queues the turn at the back of its user's FIFO and its session's order, consuming the
   * admission reservation (if any). Returns false when the turn was already in the scheduler.
   */
  async admit(turn: TurnRef, limits: UserLimits, reservation = ""): Promise<boolean> {
    const added = await this.admitScript(
      ...this.common(),
      turn.id,
      turn.userId,
      turn.sessionId,
      limits.weight,
      limits.maxRunning,
      reservation,
    );
    return added === 1;
  }

  /** Takes a turn that is still waiting for dispatch out of its FIFO; false if it was not there. */
  async withdraw(turn: TurnRef): Promise<boolean> {
    return (await this.withdrawScript(...this.common(), turn.id, turn.userId)) === 1;
  }

  /**
   * The turn has ended: frees its session (the lease — `lease`, or with null whichever attempt
   * of the turn holds it — and its place in the order) and its running slot, in one script, as
   * SessionLeases.release would; with `sessionId: ""` (unknown) only the slot. True if a slot
   * was freed.
   */
  async endTurn(turn: TurnRef, lease: string | null): Promise<boolean> {
    const reply = await this.releaseScript(
      ...this.common(),
      turn.id,
      turn.userId,
      turn.sessionId,
      lease ?? "",
    );
    return reply === 1;
  }

  /** Frees the turn's running slot only, leaving its session as it is. True if one was freed. */
  async freeSlot(turn: Pick<TurnRef, "id" | "userId">): Promise<boolean> {
    return (await this.releaseScript(...this.common(), turn.id, turn.userId, "", "")) === 1;
  }

  /** Repairs the user's counters and readiness after a crash left them behind. */
  async recount(userId: string): Promise<void> {
    await this.recountScript(...this.common(), userId);
  }

  async stateOf(turn: TurnRef): Promise<SchedulerState> {
    const f = this.keys.fairPrefix;
    const [meta, running] = await Promise.all([
      this.redis.hexists(`${f}meta`, turn.id),
      this.redis.sismember(`${f}run:${turn.userId}`, turn.id),
    ]);
    if (running === 1) return "running";
    return meta === 1 ? "waiting" : "unknown";
  }

  /** Users with turns waiting or holding slots (the repair walks these). */
  async activeUsers(): Promise<string[]> {
    const f = this.keys.fairPrefix;
    const [running, backlog] = await Promise.all([
      this.redis.zrange(`${f}running`, 0, -1),
      this.redis.zrange(`${f}backlog`, 0, -1),
    ]);
    return [...new Set([...running, ...backlog])];
  }

  /** The turns holding the user's running slots. */
  runningTurns(userId: string): Promise<string[]> {
    return this.redis.smembers(`${this.keys.fairPrefix}run:${userId}`);
  }

  /**
   * The user's head turn and its session's head turn, when the user waits but is not ready for
   * a reason other than its cap: the session head is then the turn in the way.
   */
  async blockedHead(
    userId: string,
  ): Promise<{ head: string; sessionId: string; blocker: string } | null> {
    const f = this.keys.fairPrefix;
    const head = await this.redis.lindex(`${f}q:${userId}`, 0);
    if (head === null || (await this.redis.zscore(`${f}ready`, userId)) !== null) return null;
    const meta = await this.redis.hget(`${f}meta`, head);
    const sessionId = meta?.split(" ")[1];
    if (!sessionId) return null;
    const blocker = await this.redis.lindex(`${this.keys.sessionOrder(sessionId)}`, 0);
    return blocker !== null && blocker !== head ? { head, sessionId, blocker } : null;
  }

  private common(): (string | number)[] {
    return commonArgs(this.keys, this.defaultCap);
  }
}
