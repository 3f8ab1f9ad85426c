/**
 * Each worker process announces how many turns it runs at once; the dispatcher sizes its window
 * from the sum over live workers. An entry lives `ttlMs` unless refreshed, so a killed worker's
 * capacity leaves the window by itself and dispatch slows down to what the survivors can take.
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import type { Logger } from "../obs/logger.js";
import type { RedisKeys } from "../redis/keys.js";

const HEARTBEAT_MS = 5_000;
const ENTRY_TTL_MS = 3 * HEARTBEAT_MS;

export class WorkerCapacity {
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly concurrency: number,
    private readonly logger: Logger,
  ) {}

  /** Registers now (so the first dispatch already counts this worker), then keeps it fresh. */
  async start(): Promise<void> {
    await this.announce();
    this.timer = setInterval(() => {
      this.announce().catch((err: Error) =>
        this.logger.warn("worker capacity heartbeat failed", { error: err.message }),
      );
    }, HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Withdraws this worker's capacity (graceful stop), so dispatch stops counting on it. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.redis.hdel(this.key, this.workerId);
  }

  private get key(): string {
    return `${this.keys.fairPrefix}workers`;
  }

  private async announce(): Promise<void> {
    await this.redis.hset(
      this.key,
      this.workerId,
      `${this.concurrency} ${Date.now() + ENTRY_TTL_MS}`,
    );
  }
}
