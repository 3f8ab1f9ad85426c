/**
 * `store-write`: events/s the batching persister stores, vs one insert per event, in the same
 * run, per adapter (SQLite always; MongoDB when MONGO_URL is set).
 *
 * - batched: the persist stream in Redis is filled with N events first (entries of
 *   EVENTS_PER_ENTRY envelopes, as emitters write them), then the real EventPersister drains it
 *   into the store; timed from its start until every event is stored;
 * - per_event_persister: the same pipeline with batching off — one event per stream entry and
 *   the persister reading one entry at a time, so every event is its own read, insert and ack;
 * - per_event_insert: `appendEvents([event])` once per event straight into the store, awaited
 *   one after another (no Redis at all: the floor of the per-event cost).
 *
 * Runs alternate; figures are medians. Target: batched ≥ 10× per-event and ≥ 20,000 events/s on
 * SQLite. Everything in Redis is under a private prefix, deleted after each run.
 */
import { Redis } from "ioredis";
import { EventPersister } from "../../src/events/persister.js";
import { createLogger } from "../../src/obs/logger.js";
import { redisKeys } from "../../src/redis/keys.js";
import type { StoredEvent } from "../../src/store/port.js";
import { REDIS_URL } from "../farm-processes.js";
import { median, round } from "../stats.js";
import { type BenchStore, benchEvent, benchStores, runId } from "../store-fixtures.js";

export interface StoreWriteOptions {
  events: number;
  perEventEvents: number;
  sessions: number;
  repeats: number;
  batchSize: number;
}

const EVENTS_PER_ENTRY = 8;
const RUN_TIMEOUT_MS = 300_000;

export async function storeWrite(options: StoreWriteOptions, log: (line: string) => void) {
  const results: Record<string, unknown> = {};
  for (const bench of await benchStores()) {
    const batched: number[] = [];
    const perEventPersister: number[] = [];
    const perEventInsert: number[] = [];
    try {
      for (let r = 0; r < options.repeats; r++) {
        batched.push(await persisterRun(bench, options.events, EVENTS_PER_ENTRY, options));
        perEventPersister.push(await persisterRun(bench, options.perEventEvents, 1, options));
        perEventInsert.push(await perEventRun(bench, options));
        log(
          `store-write ${bench.adapter} #${r + 1}: batched ${round(batched.at(-1) ?? 0)}, ` +
            `per-event persister ${round(perEventPersister.at(-1) ?? 0)}, ` +
            `per-event insert ${round(perEventInsert.at(-1) ?? 0)} events/s`,
        );
      }
    } finally {
      await bench.dispose();
    }
    const b = median(batched);
    const pp = median(perEventPersister);
    const pi = median(perEventInsert);
    const rounded = (list: number[]) => list.map((v) => round(v));
    results[bench.adapter] = {
      batched_events_per_s: round(b),
      per_event_persister_events_per_s: round(pp),
      per_event_insert_events_per_s: round(pi),
      batched_to_per_event_persister: round(b / pp, 2),
      batched_to_per_event_insert: round(b / pi, 2),
      runs: {
        batched: rounded(batched),
        per_event_persister: rounded(perEventPersister),
        per_event_insert: rounded(perEventInsert),
      },
    };
  }
  if (!process.env.MONGO_URL) results.mongodb = "skipped: MONGO_URL is not set";
  return {
    ...results,
    settings: {
      events: options.events,
      per_event_events: options.perEventEvents,
      sessions: options.sessions,
      persist_batch_size: options.batchSize,
      events_per_stream_entry: EVENTS_PER_ENTRY,
      repeats: options.repeats,
    },
  };
}

/** Events of `sessions` sessions, interleaved in batches as concurrent turns emit them. */
function workload(count: number, sessions: number, id: string): StoredEvent[] {
  const events: StoredEvent[] = [];
  const seqs = new Array<number>(sessions).fill(0);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const s = Math.floor(i / EVENTS_PER_ENTRY) % sessions;
    seqs[s] = (seqs[s] ?? 0) + 1;
    events.push(benchEvent(`w-${id}-${s}`, seqs[s] as number, now + i));
  }
  return events;
}

/**
 * Fills the persist stream (`perEntry` events an entry; 1 = batching off, and the persister
 * then reads one entry at a time too), then times the persister draining it.
 */
async function persisterRun(
  bench: BenchStore,
  count: number,
  perEntry: number,
  options: StoreWriteOptions,
): Promise<number> {
  const id = runId();
  const keys = redisKeys(`bench-store-write:${id}`);
  const events = workload(count, options.sessions, id);
  const redis = new Redis(REDIS_URL);
  const blocking = new Redis(REDIS_URL);
  const store = await bench.open();
  const logger = createLogger("bench-persister", "error");
  try {
    for (let i = 0; i < events.length; i += 1_000 * perEntry) {
      const pipeline = redis.pipeline();
      for (let j = i; j < Math.min(events.length, i + 1_000 * perEntry); j += perEntry) {
        const payload = events
          .slice(j, j + perEntry)
          .map((e) => e.envelope)
          .join("\n");
        pipeline.xadd(keys.persistStream, "*", "e", payload);
      }
      await pipeline.exec();
    }
    const persister = new EventPersister(
      blocking,
      keys,
      store,
      perEntry === 1 ? 1 : options.batchSize,
      logger,
      Number.MAX_SAFE_INTEGER,
    );
    const started = performance.now();
    await persister.start();
    const deadline = Date.now() + RUN_TIMEOUT_MS;
    while (persister.stats.eventsPersisted < events.length) {
      if (Date.now() > deadline)
        throw new Error("store-write: the persister did not finish in time");
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    const elapsedS = (performance.now() - started) / 1000;
    await persister.stop();
    return events.length / elapsedS;
  } finally {
    await redis.del(keys.persistStream);
    redis.disconnect();
    blocking.disconnect();
    await store.close();
  }
}

async function perEventRun(bench: BenchStore, options: StoreWriteOptions): Promise<number> {
  const events = workload(options.perEventEvents, options.sessions, runId());
  const store = await bench.open();
  try {
    const started = performance.now();
    for (const event of events) await store.appendEvents([event]);
    return events.length / ((performance.now() - started) / 1000);
  } finally {
    await store.close();
  }
}
