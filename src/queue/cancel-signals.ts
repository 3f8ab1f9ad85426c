/**
 * Cancel requests reach whichever worker runs a turn, in any process.
 *
 * The request is recorded twice: a flag key (the source of truth, read when a turn starts and on
 * every lease renewal, so a missed message delays a cancel by at most one renewal period) and a
 * pub/sub broadcast (the fast path: every worker hears it and aborts the turn if it runs it).
 */
import type { Redis } from "ioredis";
import { untilReady } from "../redis/connection.js";
import type { RedisKeys } from "../redis/keys.js";

/** A cancel flag outlives any turn that could still start. */
const CANCEL_FLAG_TTL_S = 86_400;

export async function requestCancel(redis: Redis, keys: RedisKeys, turnId: string): Promise<void> {
  await redis
    .multi()
    .set(keys.turnCancel(turnId), "1", "EX", CANCEL_FLAG_TTL_S)
    .publish(keys.cancelChannel, turnId)
    .exec();
}

export async function isCancelRequested(
  redis: Redis,
  keys: RedisKeys,
  turnId: string,
): Promise<boolean> {
  return (await redis.exists(keys.turnCancel(turnId))) === 1;
}

/** Worker side: one subscription per process, dispatching to the turns it runs. */
export class CancelListener {
  private readonly watchers = new Map<string, () => void>();

  constructor(
    private readonly subscriber: Redis,
    private readonly keys: RedisKeys,
  ) {
    subscriber.on("message", (channel: string, turnId: string) => {
      if (channel === keys.cancelChannel) this.watchers.get(turnId)?.();
    });
  }

  async start(): Promise<void> {
    await untilReady(this.subscriber);
    await this.subscriber.subscribe(this.keys.cancelChannel);
  }

  /** Calls `onCancel` when a cancel for the turn is broadcast; returns the unwatch. */
  watch(turnId: string, onCancel: () => void): () => void {
    this.watchers.set(turnId, onCancel);
    return () => {
      if (this.watchers.get(turnId) === onCancel) this.watchers.delete(turnId);
    };
  }
}
