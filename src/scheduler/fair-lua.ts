/**
 * The fair scheduler's Redis layout and the Lua every scheduler script shares.
 *
 * Keys (all under `<prefix>:fair:`; per-user keys are built in Lua from the user id):
 * - `q:<user>`    LIST   the user's admitted, not yet dispatched turns, oldest first (FIFO);
 * - `run:<user>`  SET    the user's dispatched turns that have not ended (its running slots);
 * - `meta`        HASH   turn → "<user> <session>" while the turn waits;
 * - `waiting`     ZSET   turn → admit time (ms) of every waiting turn (depth, oldest age);
 * - `ready`       ZSET   user → pass: exactly the users that can be dispatched now;
 * - `heads`       ZSET   user → admit time of its head turn, for the users in `ready`;
 * - `pass`        HASH   user → pass while the user is not ready (blocked, or empty); a ready
 *                         user's pass is its score in `ready`;
 * - `vt`          STRING virtual time: the pass of the last dispatch;
 * - `weight`, `cap` HASH user → weight, running cap (from its tier, refreshed on each admit);
 * - `backlog`, `running` ZSET user → count of waiting / running turns (admin view, repair);
 * - `resv:<user>`, `sresv:<session>` ZSET token → expiry: admission reservations;
 * - `workers`     HASH   worker id → "<concurrency> <expires at ms>" (dispatch window);
 * - `rejected`    HASH   reason → count of refused submits.
 *
 * Stride scheduling gives the weighted round-robin: each dispatch advances the user's pass by
 * 1/weight and the lowest pass goes next. A user that becomes ready enters at max(own pass, vt),
 * so waiting earns no credit and a newcomer is next in line, never behind a whole backlog.
 *
 * Invariant kept by `settle`: a user is in `ready` exactly when it can be dispatched now — it has
 * a waiting turn, fewer running turns than its cap, and its head turn is the head of its session
 * (the session has no earlier turn still queued or running). Every script that changes one of
 * those inputs settles the user it touched; dispatch re-checks anyway, so a missed settle delays
 * a user until the next change or repair, but never lets a turn out of order.
 */

import type { RedisKeys } from "../redis/keys.js";

/** ARGV[1..4] of every scheduler script: key prefixes, the time, the default running cap. */
export function commonArgs(keys: RedisKeys, defaultCap: number): (string | number)[] {
  return [keys.fairPrefix, keys.sessionPrefix, Date.now(), defaultCap];
}

/** Number of ARGV slots `commonArgs` fills; a script's own args start after it. */
export const COMMON_ARGC = 4;

export const FAIR_LUA_PRELUDE = `
local F = ARGV[1]
local S = ARGV[2]
local NOW = tonumber(ARGV[3])
local DEFAULT_CAP = tonumber(ARGV[4])
local function qk(u) return F .. 'q:' .. u end
local function rk(u) return F .. 'run:' .. u end
local function orderk(s) return S .. s .. ':order' end

local function metaOf(t)
  local m = redis.call('HGET', F .. 'meta', t)
  if not m then return nil, nil end
  local sp = string.find(m, ' ', 1, true)
  return string.sub(m, 1, sp - 1), string.sub(m, sp + 1)
end

local function capOf(u)
  return tonumber(redis.call('HGET', F .. 'cap', u) or DEFAULT_CAP)
end

local function strideOf(u)
  return 1 / tonumber(redis.call('HGET', F .. 'weight', u) or '1')
end

local function bump(zkey, u, by)
  if tonumber(redis.call('ZINCRBY', zkey, by, u)) <= 0 then redis.call('ZREM', zkey, u) end
end

-- The user's head turn and its session if the user can be dispatched now, else nil.
local function dispatchableHead(u)
  local head = redis.call('LINDEX', qk(u), 0)
  if not head then return nil end
  if redis.call('SCARD', rk(u)) >= capOf(u) then return nil end
  local _, s = metaOf(head)
  if not s or redis.call('LINDEX', orderk(s), 0) ~= head then return nil end
  return head, s
end

-- headMoved: the caller may have changed the user's head turn (else a user already ready
-- keeps its entry in heads as it is).
local function settle(u, headMoved)
  local head = dispatchableHead(u)
  if head then
    local known = redis.call('ZSCORE', F .. 'ready', u)
    if not known then
      local vt = tonumber(redis.call('GET', F .. 'vt') or '0')
      local p = tonumber(redis.call('HGET', F .. 'pass', u) or '0')
      if p < vt then p = vt end
      redis.call('ZADD', F .. 'ready', p, u)
    end
    if headMoved or not known then
      redis.call('ZADD', F .. 'heads', redis.call('ZSCORE', F .. 'waiting', head) or NOW, u)
    end
  else
    -- Leaving the ready set: remember the pass it had there (it is kept only in the set).
    local current = redis.call('ZSCORE', F .. 'ready', u)
    if current then
      redis.call('HSET', F .. 'pass', u, current)
      redis.call('ZREM', F .. 'ready', u)
    end
    redis.call('ZREM', F .. 'heads', u)
    if redis.call('LLEN', qk(u)) == 0 and redis.call('SCARD', rk(u)) == 0 then
      redis.call('HDEL', F .. 'pass', u)
      redis.call('HDEL', F .. 'weight', u)
      redis.call('HDEL', F .. 'cap', u)
    end
  end
end
`;
