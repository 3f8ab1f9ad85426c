/**
 * Each worker process announces how many turns it runs at once, as `<concurrency> <expires at
 * ms>` under its id in the `workers` hash; the dispatcher (in Lua) sizes its window from the sum
 * over live workers. An entry lives `ttlMs` unless refreshed, so a killed worker's
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

  /** Live workers and their total concurrency, as dispatch counts them (admin view). */
  static async live(redis: Redis, keys: RedisKeys, now = Date.now()) {
    let live = 0;
    let capacity = 0;
    for (const entry of Object.values(await redis.hgetall(`${keys.fairPrefix}workers`))) {
      const [concurrency, expiresAt] = entry.split(" ").map(Number);
      if ((expiresAt ?? 0) > now) {
        live++;
        capacity += concurrency ?? 0;
      }
    }
    return { live, capacity };
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
