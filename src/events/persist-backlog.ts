/**
 * How much of the event log waits in Redis for the store: the persist stream's length, the age
 * of its oldest entry, and Redis's memory against its `maxmemory`. While the store is down or
 * slow, events stay in that stream (nothing is dropped); this is how operators see it grow, as
 * metrics and as a warning in the persister's log before Redis reaches its bound.
 *
 * Invariant: measuring is read-only and cheap (XLEN, one XRANGE entry, INFO memory), so it can
 * run on every scrape and every persister housekeeping round.
 */
import type { Redis } from "ioredis";
import { Gauge } from "prom-client";
import type { Logger } from "../obs/logger.js";
import { metricsRegistry } from "../obs/metrics.js";
import type { RedisKeys } from "../redis/keys.js";

/** Warn when Redis is this full (of maxmemory): with noeviction, a full Redis refuses new events. */
export const REDIS_MEMORY_WARN_RATIO = 0.8;
const WARN_EVERY_MS = 60_000;

export interface PersistBacklog {
  /** Entries in the persist stream (each holds one emission batch of events). */
  entries: number;
  /** Age of the oldest entry still in the stream, 0 when it is empty. */
  oldestAgeMs: number;
  memoryUsedBytes: number;
  /** 0 when Redis runs without a maxmemory bound. */
  memoryMaxBytes: number;
}

export async function measurePersistBacklog(
  redis: Redis,
  keys: RedisKeys,
  nowMs = Date.now(),
): Promise<PersistBacklog> {
  const [entries, oldest, memory] = await Promise.all([
    redis.xlen(keys.persistStream),
    redis.xrange(keys.persistStream, "-", "+", "COUNT", 1),
    redis.info("memory"),
  ]);
  const firstId = oldest[0]?.[0];
  return {
    entries,
    oldestAgeMs: firstId ? Math.max(0, nowMs - Number(firstId.split("-")[0])) : 0,
    memoryUsedBytes: infoNumber(memory, "used_memory"),
    memoryMaxBytes: infoNumber(memory, "maxmemory"),
  };
}

/** Logs a warning (at most once a minute) while the backlog nears its bound. */
export class BacklogWarner {
  private lastWarnMs = 0;

  constructor(
    private readonly logger: Logger,
    private readonly warnEntries: number,
  ) {}

  check(backlog: PersistBacklog, nowMs = Date.now()): boolean {
    const ratio = memoryRatio(backlog);
    const near = backlog.entries >= this.warnEntries || ratio >= REDIS_MEMORY_WARN_RATIO;
    if (near && nowMs - this.lastWarnMs >= WARN_EVERY_MS) {
      this.lastWarnMs = nowMs;
      this.logger.warn("events are piling up in Redis waiting for the store", {
        backlog_entries: backlog.entries,
        warn_entries: this.warnEntries,
        oldest_age_ms: backlog.oldestAgeMs,
        redis_memory_used_ratio: Number(ratio.toFixed(3)),
      });
    }
    return near;
  }
}

/**
 * Registers the backlog gauges, measured on each scrape. The API process owns them: it is always
 * running and scraped, whichever process (if any) is persisting.
 */
export function registerPersistBacklogGauges(redis: Redis, keys: RedisKeys): void {
  let last: Promise<PersistBacklog> | null = null;
  // One measurement serves the three gauges of a scrape.
  const measure = () => {
    last ??= measurePersistBacklog(redis, keys).finally(() => {
      setImmediate(() => {
        last = null;
      });
    });
    return last;
  };
  const gauge = (name: string, help: string, read: (b: PersistBacklog) => number) => {
    // A process that starts a second API (tests do) hands the gauges to the newest one.
    metricsRegistry.removeSingleMetric(name);
    return new Gauge({
      name,
      help,
      registers: [metricsRegistry],
      async collect() {
        // Redis down: keep the last value rather than fail the whole /metrics page.
        const backlog = await measure().catch(() => null);
        if (backlog !== null) this.set(read(backlog));
      },
    });
  };
  gauge(
    "farm_persist_backlog_entries",
    "Entries in the persist stream: events waiting in Redis to be stored",
    (b) => b.entries,
  );
  gauge(
    "farm_event_persist_lag_seconds",
    "Age of the oldest event batch not yet trimmed from the persist stream",
    (b) => b.oldestAgeMs / 1000,
  );
  gauge(
    "farm_redis_memory_used_ratio",
    "Redis used_memory / maxmemory (0 when Redis has no maxmemory)",
    memoryRatio,
  );
}

function memoryRatio(b: PersistBacklog): number {
  return b.memoryMaxBytes > 0 ? b.memoryUsedBytes / b.memoryMaxBytes : 0;
}

function infoNumber(info: string, field: string): number {
  const match = new RegExp(`^${field}:(\\d+)`, "m").exec(info);
  return match ? Number(match[1]) : 0;
}
