/**
 * Moves events from the persist stream into the store, in batches, through a Redis consumer
 * group so any number of persister processes share the work.
 *
 * Invariants:
 * - an entry is acknowledged only after the store accepted its events; a crash re-delivers it
 *   (to this consumer on restart, or to another after `CLAIM_IDLE_MS`), and the store's
 *   idempotent insert makes the re-delivery harmless;
 * - the persist stream is trimmed only below the oldest entry not yet acknowledged, so trimming
 *   never drops an unpersisted event;
 * - while the store is down, entries stay in the stream and the loop retries with backoff; the
 *   stream's growth is measured every BACKLOG_CHECK_EVERY_MS and logged as it nears its bound
 *   (./persist-backlog.ts) — also while the store is down, when housekeeping does not run.
 */
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { Logger } from "../obs/logger.js";
import { metricsRegistry } from "../obs/metrics.js";
import type { RedisKeys } from "../redis/keys.js";
import type { Store, StoredEvent } from "../store/port.js";
import { storedEventOf } from "./event-log.js";
import { BacklogWarner, measurePersistBacklog } from "./persist-backlog.js";

export const PERSIST_GROUP = "persisters";
const BLOCK_MS = 1_000;
/**
 * After a small batch, wait this long before reading again so the next batch is bigger: fewer,
 * larger store transactions and Redis round trips for a bounded extra persist lag. Live readers
 * are not affected (they read the hot stream).
 */
const LINGER_MS = 20;
const CLAIM_IDLE_MS = 30_000;
const HOUSEKEEPING_EVERY_MS = 1_000;
const MAX_BACKOFF_MS = 10_000;
const BACKLOG_CHECK_EVERY_MS = 10_000;

const eventsPersisted = new Counter({
  name: "farm_events_persisted_total",
  help: "Events this persister wrote to the durable store",
  registers: [metricsRegistry],
});

type StreamEntry = [id: string, fields: string[]];
type ReadReply = [stream: string, entries: StreamEntry[]][] | null;

export interface PersisterStats {
  eventsPersisted: number;
  batches: number;
}

export class EventPersister {
  private running = false;
  private loop: Promise<void> | null = null;
  private readonly consumer =
    `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`;
  private lastHousekeepingMs = 0;
  private lastBacklogCheckMs = 0;
  private readonly backlogWarner: BacklogWarner;
  readonly stats: PersisterStats = { eventsPersisted: 0, batches: 0 };

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly store: Store,
    private readonly batchSize: number,
    private readonly logger: Logger,
    backlogWarnEntries: number,
  ) {
    this.backlogWarner = new BacklogWarner(logger, backlogWarnEntries);
  }

  async start(): Promise<void> {
    await this.ensureGroup();
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the batch in hand is stored and acknowledged. */
  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async flushAcks(toAck: string[]): Promise<void> {
    if (toAck.length > 0) await this.redis.xack(this.keys.persistStream, PERSIST_GROUP, ...toAck);
  }

  private async ensureGroup(): Promise<void> {
    try {
      await this.redis.xgroup("CREATE", this.keys.persistStream, PERSIST_GROUP, "0", "MKSTREAM");
    } catch (err) {
      if (!(err as Error).message.includes("BUSYGROUP")) throw err;
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    // First re-deliver what this consumer name may have left pending, then new entries.
    let cursor = "0";
    let toAck: string[] = [];
    while (this.running) {
      try {
        const entries = await this.ackAndRead(toAck, cursor);
        toAck = [];
        if (cursor === "0" && entries.length === 0) cursor = ">";
        if (entries.length > 0) toAck = await this.persist(entries);
        await this.housekeeping();
        failures = 0;
        if (entries.length > 0 && entries.length < this.batchSize) await sleep(LINGER_MS);
      } catch (err) {
        failures++;
        await this.checkBacklog();
        // Retry this consumer's own unacknowledged entries before taking new ones, so a batch
        // the store refused is stored again first (no hole that waits for the claim timeout).
        cursor = "0";
        const waitMs = Math.min(MAX_BACKOFF_MS, 100 * 2 ** Math.min(failures, 7));
        this.logger.warn("event persist failed; retrying", {
          error: (err as Error).message,
          attempt: failures,
          wait_ms: waitMs,
        });
        if ((err as Error).message.includes("NOGROUP")) await this.ensureGroup().catch(() => {});
        await sleep(waitMs);
      }
    }
    await this.flushAcks(toAck).catch(() => undefined);
  }

  /** Acknowledges the stored batch and reads the next one in the same round trip. */
  private async ackAndRead(toAck: string[], cursor: string): Promise<StreamEntry[]> {
    const pipeline = this.redis.pipeline();
    if (toAck.length > 0) pipeline.xack(this.keys.persistStream, PERSIST_GROUP, ...toAck);
    pipeline.xreadgroup(
      "GROUP",
      PERSIST_GROUP,
      this.consumer,
      "COUNT",
      this.batchSize,
      "BLOCK",
      BLOCK_MS,
      "STREAMS",
      this.keys.persistStream,
      cursor,
    );
    const results = (await pipeline.exec()) ?? [];
    for (const [err] of results) if (err) throw err;
    const reply = results.at(-1)?.[1] as ReadReply;
    return reply?.[0]?.[1] ?? [];
  }

  /** Stores the entries' events; returns the entry ids to acknowledge. */
  private async persist(entries: StreamEntry[]): Promise<string[]> {
    const rows: StoredEvent[] = [];
    for (const [, fields] of entries) {
      const payload = fields[1];
      if (!payload) continue;
      for (const envelope of payload.split("\n")) rows.push(storedEventOf(envelope));
    }
    await this.store.appendEvents(rows);
    eventsPersisted.inc(rows.length);
    this.stats.eventsPersisted += rows.length;
    this.stats.batches++;
    return entries.map(([id]) => id);
  }

  /** Warns while the backlog nears its bound; never throws (it runs on the failure path too). */
  private async checkBacklog(): Promise<void> {
    const now = Date.now();
    if (now - this.lastBacklogCheckMs < BACKLOG_CHECK_EVERY_MS) return;
    this.lastBacklogCheckMs = now;
    try {
      this.backlogWarner.check(await measurePersistBacklog(this.redis, this.keys, now), now);
    } catch {
      // Redis itself is unreachable: the loop's own retry log says so.
    }
  }

  /** Claims entries a dead persister left behind and trims what every persister has stored. */
  private async housekeeping(): Promise<void> {
    const now = Date.now();
    if (now - this.lastHousekeepingMs < HOUSEKEEPING_EVERY_MS) return;
    this.lastHousekeepingMs = now;
    await this.checkBacklog();

    const claimed = (await this.redis.xautoclaim(
      this.keys.persistStream,
      PERSIST_GROUP,
      this.consumer,
      CLAIM_IDLE_MS,
      "0",
      "COUNT",
      this.batchSize,
    )) as [string, StreamEntry[]];
    const orphans = claimed[1].filter(([, fields]) => fields !== null);
    if (orphans.length > 0) {
      this.logger.info("claimed events left by another persister", { entries: orphans.length });
      const ids = await this.persist(orphans);
      await this.redis.xack(this.keys.persistStream, PERSIST_GROUP, ...ids);
    }
    await this.trim();
  }

  /**
   * Trims below the oldest entry that may not be stored yet. The last-delivered id is read
   * *before* the pending summary: anything delivered in between has a higher id, so the floor
   * min(next after last-delivered, oldest pending) never passes an unacknowledged entry.
   */
  private async trim(): Promise<void> {
    const groups = (await this.redis.xinfo("GROUPS", this.keys.persistStream)) as unknown[][];
    const group = groups.find((g) => g[1] === PERSIST_GROUP);
    const delivered = group ? group[group.indexOf("last-delivered-id") + 1] : null;
    if (typeof delivered !== "string" || delivered === "0-0") return;
    const pending = (await this.redis.xpending(this.keys.persistStream, PERSIST_GROUP)) as [
      number,
      string | null,
      string | null,
      unknown,
    ];
    const oldestPending = pending[0] > 0 ? pending[1] : null;
    const floor = oldestPending ? minId(oldestPending, nextId(delivered)) : nextId(delivered);
    await this.redis.xtrim(this.keys.persistStream, "MINID", floor);
  }
}

function parseId(id: string): [number, number] {
  const [ms, seq] = id.split("-");
  return [Number(ms), Number(seq ?? 0)];
}

function nextId(id: string): string {
  const [ms, seq] = parseId(id);
  return `${ms}-${seq + 1}`;
}

function minId(a: string, b: string): string {
  const [am, as] = parseId(a);
  const [bm, bs] = parseId(b);
  return am < bm || (am === bm && as <= bs) ? a : b;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
