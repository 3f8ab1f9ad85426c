/**
 * Adding a turn's BullMQ job from inside the dispatcher's claim script, so that taking a turn
 * from its user's FIFO and putting it on the queue is one atomic step: no turn is ever claimed
 * without a job, and jobs reach the queue in claim order.
 *
 * This writes what BullMQ 6's own add script (`addStandardJob`) writes for a plain job with a
 * custom id, no delay, no priority and no parent: the job hash (name, data, opts, timestamp,
 * delay, priority), the id pushed on the wait list, and the marker that wakes blocked workers
 * unless the queue is paused or at its global concurrency. It skips the queue's event stream
 * (the farm does not read it) and does nothing when a job with that id exists, as BullMQ does.
 * test/scheduler/bullmq-insert.spec.ts checks that real BullMQ workers run such jobs with
 * their options (attempts, backoff, retention) — run it when upgrading BullMQ.
 */

import { TURN_JOB_NAME, TURN_JOB_OPTIONS } from "../queue/turn-queue.js";
import type { RedisKeys } from "../redis/keys.js";

/** ARGV the insert needs, in order, last in the calling script's ARGV. */
export function bullmqInsertArgs(keys: RedisKeys): string[] {
  const optsJson = JSON.stringify(TURN_JOB_OPTIONS);
  return [
    keys.turnQueueJob,
    keys.turnQueueWait,
    keys.turnQueueActive,
    keys.turnQueueMarker,
    keys.turnQueueMeta,
    TURN_JOB_NAME,
    // The per-job `jobId` is spliced in before the closing brace.
    `${optsJson.slice(0, -1)},"jobId":`,
  ];
}

/**
 * Lua defining `insertJob(turn, user, session, now)` and `wakeWorkers()`, reading its args from
 * ARGV[base + 1 …]. `insertJob` returns false when the job already existed.
 */
export function bullmqInsertLua(base: number): string {
  const a = (i: number) => `ARGV[${base + i}]`;
  return `
local JOB, WAIT, ACTIVE, MARKER, META = ${a(1)}, ${a(2)}, ${a(3)}, ${a(4)}, ${a(5)}
local JOB_NAME, OPTS_HEAD = ${a(6)}, ${a(7)}
local function insertJob(t, u, s, now)
  local key = JOB .. t
  if redis.call('EXISTS', key) == 1 then return false end
  redis.call('HSET', key, 'name', JOB_NAME,
    'data', cjson.encode({turnId = t, sessionId = s, userId = u}),
    'opts', OPTS_HEAD .. cjson.encode(t) .. '}',
    'timestamp', now, 'delay', 0, 'priority', 0)
  redis.call('LPUSH', WAIT, t)
  return true
end
local function wakeWorkers()
  local meta = redis.call('HMGET', META, 'paused', 'concurrency')
  if meta[1] then return end
  if meta[2] and redis.call('LLEN', ACTIVE) >= tonumber(meta[2]) then return end
  redis.call('ZADD', MARKER, 0, '0')
end
`;
}
