/**
 * `store-replay`: replaying one long session from the store, from a mid-point seq, the way the
 * API pages through it (`readEvents(after, PAGE_EVENTS)` until the end).
 *
 * The session has N events (default 100,000) spread evenly over B day buckets (default 30). In
 * the same run, the same replay of a session of N events in ONE bucket is the baseline: the
 * ratio is what bucketing costs a reader. Figures: time to the first page (first event), events/s
 * for the whole replay, medians over the repeats. Per adapter (SQLite; MongoDB with MONGO_URL).
 */
import type { Store } from "../../src/store/port.js";
import { median, round } from "../stats.js";
import { benchEvent, benchStores, runId } from "../store-fixtures.js";

export interface StoreReplayOptions {
  events: number;
  buckets: number;
  repeats: number;
}

/** The page size of GET …/events?limit= at its maximum, and of SSE replay. */
const PAGE_EVENTS = 1_000;
const LOAD_BATCH = 5_000;
const DAY_MS = 86_400_000;

export async function storeReplay(options: StoreReplayOptions, log: (line: string) => void) {
  const results: Record<string, unknown> = {};
  for (const bench of await benchStores()) {
    const store = await bench.open();
    try {
      const id = runId();
      const spread = `replay-${id}-spread`;
      const single = `replay-${id}-single`;
      await load(store, spread, options.events, options.buckets);
      await load(store, single, options.events, 1);
      const buckets = (await store.listSessionBuckets(spread)).length;
      const from = Math.floor(options.events / 2);
      const runs = { spread: [] as Replay[], single: [] as Replay[] };
      for (let r = 0; r < options.repeats; r++) {
        runs.spread.push(await replay(store, spread, from));
        runs.single.push(await replay(store, single, from));
      }
      const figures = (list: Replay[]) => ({
        first_event_ms: round(median(list.map((x) => x.firstMs)), 2),
        events_per_s: round(median(list.map((x) => x.eventsPerS))),
        events: list[0]?.events ?? 0,
      });
      const spreadFigures = figures(runs.spread);
      const singleFigures = figures(runs.single);
      results[bench.adapter] = {
        [`${buckets}_buckets`]: spreadFigures,
        one_bucket_baseline: singleFigures,
        throughput_vs_one_bucket: round(spreadFigures.events_per_s / singleFigures.events_per_s, 3),
        from_seq: from,
      };
      log(`store-replay ${bench.adapter}: ${JSON.stringify(results[bench.adapter])}`);
    } finally {
      await store.close();
      await bench.dispose();
    }
  }
  if (!process.env.MONGO_URL) results.mongodb = "skipped: MONGO_URL is not set";
  return { ...results, settings: { ...options, page_events: PAGE_EVENTS } };
}

interface Replay {
  firstMs: number;
  eventsPerS: number;
  events: number;
}

async function load(store: Store, session: string, events: number, buckets: number): Promise<void> {
  const start = Date.UTC(2026, 0, 1);
  const perBucket = Math.ceil(events / buckets);
  for (let from = 1; from <= events; from += LOAD_BATCH) {
    const batch = [];
    for (let seq = from; seq < Math.min(events + 1, from + LOAD_BATCH); seq++) {
      batch.push(
        benchEvent(session, seq, start + Math.floor((seq - 1) / perBucket) * DAY_MS + seq),
      );
    }
    await store.appendEvents(batch);
  }
}

async function replay(store: Store, session: string, after: number): Promise<Replay> {
  const started = performance.now();
  let firstMs = 0;
  let cursor = after;
  let events = 0;
  for (;;) {
    const page = await store.readEvents(session, cursor, PAGE_EVENTS);
    if (events === 0) firstMs = performance.now() - started;
    if (page.length === 0) break;
    events += page.length;
    cursor = page.at(-1)?.seq ?? cursor;
  }
  return { firstMs, eventsPerS: events / ((performance.now() - started) / 1000), events };
}
