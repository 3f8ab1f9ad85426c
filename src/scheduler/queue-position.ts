/**
 * `queue_position` of a waiting turn: how many turns of other users the scheduler would dispatch
 * before it if nothing changed (wunder calls this `queue_ahead`).
 *
 * The turn is k-th in its user's FIFO, so it goes at pass p_u + k·stride_u. Each other ready
 * user v with pass p_v dispatches one turn per stride_v until then, at most as many as it has
 * waiting. Users not ready now (at their cap, or behind a busy session) are left out: they join
 * when they can, which is why this is an estimate, not a promise. Ties between equal passes go
 * to the smaller user id, as in the ready ZSET.
 *
 * Cost: one script, linear in the ready users with a lower pass, capped at
 * `MAX_USERS_SCANNED` (the figure is then a lower bound).
 */
import type { Redis } from "ioredis";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";
import { commonArgs, FAIR_LUA_PRELUDE } from "./fair-lua.js";

const MAX_USERS_SCANNED = 5_000;

const POSITION_LUA = `${FAIR_LUA_PRELUDE}
local t = ARGV[5]
local u = metaOf(t)
if not u then return -1 end
local k = redis.call('LPOS', qk(u), t)
if not k then return 0 end
local p = tonumber(redis.call('ZSCORE', F .. 'ready', u) or '-1')
if p < 0 then
  local vt = tonumber(redis.call('GET', F .. 'vt') or '0')
  p = tonumber(redis.call('HGET', F .. 'pass', u) or '0')
  if p < vt then p = vt end
end
local target = p + k * strideOf(u)
local ahead = 0
local others = redis.call('ZRANGEBYSCORE', F .. 'ready', '-inf', target, 'WITHSCORES',
  'LIMIT', 0, tonumber(ARGV[6]))
for i = 1, #others, 2 do
  local v, pv = others[i], tonumber(others[i + 1])
  if v ~= u then
    local stride = strideOf(v)
    local n = math.floor((target - pv) / stride)
    if pv + n * stride < target or v < u then n = n + 1 end
    local waiting = redis.call('LLEN', qk(v))
    if n > waiting then n = waiting end
    ahead = ahead + n
  end
end
return ahead
`;

export class QueuePositions {
  private readonly positionScript: RedisScript<number>;

  constructor(
    redis: Redis,
    private readonly keys: RedisKeys,
    private readonly defaultCap: number,
  ) {
    this.positionScript = defineScript(redis, "farmFairPosition", 0, POSITION_LUA);
  }

  /**
   * Turns of other users ahead of this one while it waits in its user's FIFO; null once it is
   * not there (dispatched to the worker queue, running, or ended).
   */
  async of(turnId: string): Promise<number | null> {
    const ahead = await this.positionScript(
      ...commonArgs(this.keys, this.defaultCap),
      turnId,
      MAX_USERS_SCANNED,
    );
    return ahead < 0 ? null : ahead;
  }
}
