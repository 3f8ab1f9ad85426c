/**
 * Dispatch: moves waiting turns from the users' FIFOs into the shared BullMQ queue, lowest pass
 * first (weighted round-robin, see fair-lua.ts), only as fast as workers can take them.
 *
 * The window: turns in BullMQ's wait and active lists plus claimed-but-not-added ones stay below
 * the live workers' total concurrency plus a small prefetch. So the backlog waits in the fair
 * FIFOs, not in BullMQ's FIFO, and a newcomer's turn is at most one prefetch behind. Turns a
 * worker parked in `delayed` (waiting for a model's budget) do not count, so they never hold
 * the window shut for turns of other models.
 *
 * Invariants:
 * - claiming is one Lua script: two dispatchers (any processes) never claim the same turn, and
 *   each claim takes the head of a user's FIFO, so no turn is skipped;
 * - one pass runs at a time farm-wide (a Redis lock), so jobs reach BullMQ in claim order and a
 *   user's turns start in submission order; a dispatcher that finds the lock taken leaves a
 *   flag, and the holder runs one more pass for it;
 * - a claimed turn sits in the outbox until its BullMQ job exists (job id = turn id, so adding
 *   it again is harmless); the repair adds the job of a claim left behind by a crash;
 * - dispatch passes in one process are coalesced: a kick during a pass runs one more pass.
 */
import { randomUUID } from "node:crypto";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "../obs/logger.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";
import { commonArgs, FAIR_LUA_PRELUDE } from "./fair-lua.js";

/** Upper bound of turns one pass claims, so one script call stays short. */
const MAX_CLAIM_PER_PASS = 256;

/** Outlives any healthy pass; a crashed holder's claims are repaired from the outbox. */
const PASS_LOCK_TTL_MS = 10_000;

// The pass lock and the "pass again" request (slots handed over by dispatchers that found the
// lock taken, so slots they free are not lost to a pass that counted them as busy).
const PASS_LOCK_LUA = `
local lock, again = F .. 'dispatching', F .. 'dispatch-again'
local function takeAgain()
  local handed = redis.call('GET', again)
  if not handed then return -1 end
  redis.call('DEL', again)
  return tonumber(handed)
end
`;

// Takes the pass lock (or asks its holder for another pass) and claims; unlocks at once when
// there is nothing to publish. Replies {'busy'}, {'idle', handed}, or {'claimed', t, u, s, …}.
const CLAIM_LUA = `${FAIR_LUA_PRELUDE}${PASS_LOCK_LUA}
if not redis.call('SET', lock, ARGV[10], 'PX', ARGV[11], 'NX') then
  redis.call('INCRBY', again, ARGV[8])
  redis.call('PEXPIRE', again, ARGV[11])
  return {'busy'}
end
local capacity = 0
local workers = redis.call('HGETALL', F .. 'workers')
for i = 1, #workers, 2 do
  local conc, expires = string.match(workers[i + 1], '^(%d+) (%d+)$')
  if conc and tonumber(expires) > NOW then
    capacity = capacity + tonumber(conc)
  else
    redis.call('HDEL', F .. 'workers', workers[i])
  end
end
local inflight = redis.call('LLEN', ARGV[5]) + redis.call('LLEN', ARGV[6])
  + redis.call('ZCARD', F .. 'outbox')
local budget = capacity + tonumber(ARGV[7]) + tonumber(ARGV[8]) - inflight
if budget > tonumber(ARGV[9]) then budget = tonumber(ARGV[9]) end
local out = {'claimed'}
local claimed = 0
while claimed < budget do
  local top = redis.call('ZRANGE', F .. 'ready', 0, 0, 'WITHSCORES')
  if #top == 0 then break end
  local u, pass = top[1], tonumber(top[2])
  local t = dispatchableHead(u)
  redis.call('ZREM', F .. 'ready', u)
  if t then
    local _, s = metaOf(t)
    redis.call('LPOP', qk(u))
    redis.call('ZREM', F .. 'waiting', t)
    bump(F .. 'backlog', u, -1)
    redis.call('SADD', rk(u), t)
    redis.call('ZINCRBY', F .. 'running', 1, u)
    redis.call('ZADD', F .. 'outbox', NOW, t)
    redis.call('SET', F .. 'vt', pass)
    redis.call('HSET', F .. 'pass', u, pass + strideOf(u))
    out[#out + 1] = t
    out[#out + 1] = u
    out[#out + 1] = s
    claimed = claimed + 1
  end
  settle(u)
end
if claimed > 0 then return out end
redis.call('DEL', lock)
return {'idle', tostring(takeAgain())}
`;

// The claims' jobs exist (ARGV[3..]): they leave the outbox and need no metadata any more.
// Then frees the pass lock if still ours; returns the slots handed over for another pass, or -1.
const ACK_UNLOCK_LUA = `
local F = ARGV[1]
${PASS_LOCK_LUA}
for i = 3, #ARGV do
  redis.call('ZREM', F .. 'outbox', ARGV[i])
  redis.call('HDEL', F .. 'meta', ARGV[i])
end
if redis.call('GET', lock) == ARGV[2] then redis.call('DEL', lock) end
return takeAgain()
`;

export interface DispatcherOptions {
  defaultCap: number;
  prefetch: number;
}

export class Dispatcher {
  private readonly claimScript: RedisScript<string[]>;
  private readonly ackUnlockScript: RedisScript<number>;
  private running: Promise<void> | null = null;
  private again = false;
  private allowance = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly queue: Queue<TurnJobData>,
    private readonly options: DispatcherOptions,
    private readonly logger: Logger,
  ) {
    this.claimScript = defineScript(redis, "farmFairClaim", 0, CLAIM_LUA);
    this.ackUnlockScript = defineScript(redis, "farmFairAckUnlock", 0, ACK_UNLOCK_LUA);
  }

  /**
   * Asks for a dispatch pass; resolves when a pass that started after this call has ended.
   * `freeing` counts slots about to be freed by the caller (a worker finishing a turn is still
   * in BullMQ's active list while it dispatches its successor). Never rejects: a failed pass is
   * logged and the next kick or tick tries again.
   */
  kick(freeing = 0): Promise<void> {
    this.allowance += freeing;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.loop();
    return this.running;
  }

  /** Runs a pass every `tickMs` in case an event-driven kick was lost (crash, Redis blip). */
  startTicking(tickMs: number): void {
    this.timer = setInterval(() => void this.kick(), tickMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Adds the BullMQ jobs of claims older than `olderThanMs` (their dispatcher died). */
  async repairOutbox(olderThanMs: number): Promise<number> {
    const stale = await this.redis.zrangebyscore(
      `${this.keys.fairPrefix}outbox`,
      "-inf",
      Date.now() - olderThanMs,
    );
    if (stale.length === 0) return 0;
    const metas = await this.redis.hmget(`${this.keys.fairPrefix}meta`, ...stale);
    const claims: TurnJobData[] = [];
    stale.forEach((turnId, i) => {
      const [userId, sessionId] = (metas[i] ?? "").split(" ");
      if (userId && sessionId) claims.push({ turnId, userId, sessionId });
    });
    await this.publish(claims);
    await this.acknowledge(stale);
    return claims.length;
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        const allowance = this.allowance;
        this.allowance = 0;
        await this.pass(allowance);
      } while (this.again);
    } catch (err) {
      this.logger.warn("dispatch pass failed", { error: (err as Error).message });
    } finally {
      // In the same synchronous step as the last `again` check, so no kick falls in between.
      this.running = null;
    }
  }

  /** One locked pass; a pass that finds the lock taken is left to its holder. */
  private async pass(allowance: number): Promise<void> {
    const token = randomUUID();
    let reply = await this.claim(allowance, token);
    // Twice: if the holder released between our miss and our request, it may not see it. The
    // second try hands over nothing more: the first one's slots are already with the holder.
    if (reply[0] === "busy") reply = await this.claim(0, token);
    if (reply[0] === "busy") return;
    let handedOver = reply[0] === "idle" ? Number(reply[1]) : -1;
    if (reply[0] === "claimed") {
      const claims: TurnJobData[] = [];
      for (let i = 1; i + 2 < reply.length; i += 3) {
        claims.push({
          turnId: reply[i] as string,
          userId: reply[i + 1] as string,
          sessionId: reply[i + 2] as string,
        });
      }
      let published: string[] = [];
      try {
        await this.publish(claims);
        published = claims.map((c) => c.turnId);
      } finally {
        // Unpublished claims stay in the outbox for the repair; the lock is freed either way.
        handedOver = await this.ackUnlockScript(this.keys.fairPrefix, token, ...published);
      }
      // A full batch means more may be dispatchable right now.
      if (claims.length >= MAX_CLAIM_PER_PASS) this.again = true;
    }
    if (handedOver >= 0) {
      this.again = true;
      this.allowance += handedOver;
    }
  }

  private claim(allowance: number, token: string): Promise<string[]> {
    return this.claimScript(
      ...commonArgs(this.keys, this.options.defaultCap),
      this.keys.turnQueueWait,
      this.keys.turnQueueActive,
      this.options.prefetch,
      allowance,
      MAX_CLAIM_PER_PASS,
      token,
      PASS_LOCK_TTL_MS,
    );
  }

  /** The claims' jobs exist: they leave the outbox and need no metadata any more. */
  private async acknowledge(turnIds: string[]): Promise<void> {
    await this.redis
      .multi()
      .zrem(`${this.keys.fairPrefix}outbox`, ...turnIds)
      .hdel(`${this.keys.fairPrefix}meta`, ...turnIds)
      .exec();
  }

  private async publish(claims: TurnJobData[]): Promise<void> {
    if (claims.length === 0) return;
    await this.queue.addBulk(
      claims.map((data) => ({ name: "turn", data, opts: { jobId: data.turnId } })),
    );
  }
}
