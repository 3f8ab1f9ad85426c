/**
 * Dispatch: moves waiting turns from the users' FIFOs into the shared BullMQ queue, lowest pass
 * first (weighted round-robin, see fair-lua.ts), only as fast as workers can take them.
 *
 * The window: turns in BullMQ's wait and active lists stay below the live workers' total
 * concurrency plus a small prefetch. So the backlog waits in the fair FIFOs, not in BullMQ's
 * FIFO, and a newcomer's turn is at most one prefetch behind. Turns a worker parked in `delayed`
 * (waiting for a model's budget) do not count, so they never hold the window shut for turns of
 * other models.
 *
 * Invariants:
 * - a pass is one Lua script that claims turns and adds their BullMQ jobs (bullmq-insert.ts):
 *   two dispatchers (any processes) never claim the same turn, each claim takes the head of a
 *   user's FIFO, no turn is ever claimed without its job, and jobs reach the queue in claim
 *   order, so a user's turns start in submission order;
 * - dispatch passes in one process are coalesced: a kick during a pass runs one more pass.
 */
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { Logger } from "../obs/logger.js";
import { metricsRegistry } from "../obs/metrics.js";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";
import { bullmqInsertArgs, bullmqInsertLua } from "./bullmq-insert.js";
import { COMMON_ARGC, commonArgs, FAIR_LUA_PRELUDE } from "./fair-lua.js";

/** Upper bound of turns one pass claims, so one script call stays short. */
const MAX_CLAIM_PER_PASS = 256;

const OWN_ARGC = 3;

// ARGV after the common ones: prefetch, slots being freed, max claims; then the insert's.
// Returns the user of each turn dispatched, in dispatch order.
const CLAIM_LUA = `${FAIR_LUA_PRELUDE}${bullmqInsertLua(COMMON_ARGC + OWN_ARGC)}
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
local inflight = redis.call('LLEN', WAIT) + redis.call('LLEN', ACTIVE)
local budget = capacity + tonumber(ARGV[5]) + tonumber(ARGV[6]) - inflight
if budget > tonumber(ARGV[7]) then budget = tonumber(ARGV[7]) end
local claimed = 0
local users = {}
local lastPass
while claimed < budget do
  local top = redis.call('ZPOPMIN', F .. 'ready')
  if #top == 0 then break end
  local u, pass = top[1], tonumber(top[2])
  local t, s = dispatchableHead(u)
  if t then
    redis.call('LPOP', qk(u))
    redis.call('ZREM', F .. 'waiting', t)
    redis.call('HDEL', F .. 'meta', t)
    bump(F .. 'backlog', u, -1)
    redis.call('SADD', rk(u), t)
    redis.call('ZINCRBY', F .. 'running', 1, u)
    lastPass = pass
    insertJob(t, u, s, NOW)
    claimed = claimed + 1
    users[claimed] = u
    -- settle(), knowing what it would look up: the user has a running turn and a new pass.
    local newPass = pass + strideOf(u)
    local nextHead = dispatchableHead(u)
    if nextHead then
      redis.call('ZADD', F .. 'ready', newPass, u)
      redis.call('ZADD', F .. 'heads', redis.call('ZSCORE', F .. 'waiting', nextHead) or NOW, u)
    else
      redis.call('HSET', F .. 'pass', u, newPass)
      redis.call('ZREM', F .. 'heads', u)
    end
  else
    -- Popped but not dispatchable after all: keep its pass for when it is.
    redis.call('HSET', F .. 'pass', u, pass)
    settle(u, true)
  end
end
if claimed > 0 then
  redis.call('SET', F .. 'vt', lastPass)
  wakeWorkers()
end
return users
`;

export interface DispatcherOptions {
  defaultCap: number;
  prefetch: number;
  /** The tier a user's dispatches are counted under (`farm_scheduler_dispatched_total`). */
  tierOf(userId: string): string;
}

const dispatchedTurns = new Counter({
  name: "farm_scheduler_dispatched_total",
  help: "Turns the fair scheduler handed to workers, by the user's tier (compare with tier weights for fairness)",
  labelNames: ["tier"] as const,
  registers: [metricsRegistry],
});

export class Dispatcher {
  private readonly claimScript: RedisScript<string[]>;
  private readonly insertArgs: string[];
  private running: Promise<void> | null = null;
  private again = false;
  private allowance = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly options: DispatcherOptions,
    private readonly logger: Logger,
  ) {
    this.claimScript = defineScript(redis, "farmFairClaim", 0, CLAIM_LUA);
    this.insertArgs = bullmqInsertArgs(keys);
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

  private async loop(): Promise<void> {
    try {
      do {
        this.again = false;
        const allowance = this.allowance;
        this.allowance = 0;
        const users = await this.claimScript(
          ...commonArgs(this.keys, this.options.defaultCap),
          this.options.prefetch,
          allowance,
          MAX_CLAIM_PER_PASS,
          ...this.insertArgs,
        );
        for (const user of users) dispatchedTurns.inc({ tier: this.options.tierOf(user) });
        // A full batch means more may be dispatchable right now.
        if (users.length >= MAX_CLAIM_PER_PASS) this.again = true;
      } while (this.again);
    } catch (err) {
      this.logger.warn("dispatch pass failed", { error: (err as Error).message });
    } finally {
      // In the same synchronous step as the last `again` check, so no kick falls in between.
      this.running = null;
    }
  }
}
