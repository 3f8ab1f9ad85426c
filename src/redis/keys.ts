/**
 * Every Redis key and channel the farm owns, in one place, under the configured prefix.
 *
 * What lives here is short-lived or rebuildable (see docs/architecture.md): sequence counters
 * (rebuilt from the store), hot event streams, leases, cancel flags, queues.
 * Keys are not hash-tagged: the farm needs a single Redis (or a primary), not a cluster.
 */
import { TURN_QUEUE_NAME } from "../queue/turn-queue.js";

export interface RedisKeys {
  /** BullMQ's own prefix; its keys sit under `<prefix>:bull:<queue>:…`. */
  bullPrefix: string;
  /** Per-session counter of the last assigned event seq. */
  sessionSeq(sessionId: string): string;
  /** Per-session hot event stream; entry ids are `<seq>-0`. */
  sessionEvents(sessionId: string): string;
  /** Pub/sub channel announcing a session's new events to live readers. */
  sessionLive(sessionId: string): string;
  /** Lease of the one running turn of a session: value `<turn_id>:<token>`. */
  sessionLease(sessionId: string): string;
  /** The session's non-terminal turns in submission order; the head may run. */
  sessionOrder(sessionId: string): string;
  /** Hash step → seq of a turn's emitted events (emission idempotency) plus `_last`. */
  turnSteps(turnId: string): string;
  /** Present while a cancel was requested for the turn. */
  turnCancel(turnId: string): string;
  /** All events of all sessions, consumed by the persisters' group. */
  persistStream: string;
  /** Pub/sub channel broadcasting cancel requests to every worker. */
  cancelChannel: string;
  /** Hash worker id → the tool catalogue that worker serves (MCP tools and their health). */
  toolCatalog: string;
  /** Pub/sub channel asking every worker to list its tool sources again now. */
  toolRefreshChannel: string;
  /** Sorted set of running turn attempts (`<turn_id>.<attempt>`), scored by entry expiry (ms). */
  monitorIndex: string;
  /** JSON snapshot of a running turn attempt for the admin monitor; expires unless refreshed. */
  monitorEntry(attemptId: string): string;
  /**
   * The fair scheduler's key prefix. Its Lua builds per-user keys from it (`<fair>q:<user>`,
   * `<fair>run:<user>`…; see src/scheduler/fair-lua.ts), so they are not listed here one by one.
   */
  fairPrefix: string;
  /** `sessionOrder(id)` is `<sessionPrefix><id>:order`; the scheduler's Lua builds it this way. */
  sessionPrefix: string;
  /**
   * Keys of BullMQ's turn queue the dispatcher's Lua writes (it adds jobs the way BullMQ's own
   * add script does; see src/scheduler/bullmq-insert.ts): job hashes `<turnQueueJob><id>`, the
   * wait and active lists, the marker that wakes workers, and the queue's meta hash.
   */
  turnQueueJob: string;
  turnQueueWait: string;
  turnQueueActive: string;
  turnQueueMarker: string;
  turnQueueMeta: string;
}

export function redisKeys(prefix: string): RedisKeys {
  const bullPrefix = `${prefix}:bull`;
  const turnQueue = `${bullPrefix}:${TURN_QUEUE_NAME}`;
  return {
    bullPrefix,
    sessionSeq: (id) => `${prefix}:s:${id}:seq`,
    sessionEvents: (id) => `${prefix}:s:${id}:ev`,
    sessionLive: (id) => `${prefix}:s:${id}:live`,
    sessionLease: (id) => `${prefix}:s:${id}:lease`,
    sessionOrder: (id) => `${prefix}:s:${id}:order`,
    turnSteps: (id) => `${prefix}:t:${id}:steps`,
    turnCancel: (id) => `${prefix}:t:${id}:cancel`,
    persistStream: `${prefix}:events`,
    cancelChannel: `${prefix}:cancel`,
    toolCatalog: `${prefix}:tools:catalog`,
    toolRefreshChannel: `${prefix}:tools:refresh`,
    monitorIndex: `${prefix}:monitor:running`,
    monitorEntry: (id) => `${prefix}:monitor:t:${id}`,
    fairPrefix: `${prefix}:fair:`,
    sessionPrefix: `${prefix}:s:`,
    turnQueueJob: `${turnQueue}:`,
    turnQueueWait: `${turnQueue}:wait`,
    turnQueueActive: `${turnQueue}:active`,
    turnQueueMarker: `${turnQueue}:marker`,
    turnQueueMeta: `${turnQueue}:meta`,
  };
}
