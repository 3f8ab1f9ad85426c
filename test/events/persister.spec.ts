/**
 * `EventPersister` against the real Redis consumer group and a real SqliteStore: every appended
 * event lands in the store byte for byte; a re-delivered entry inserts nothing twice; two
 * persisters share the stream without losing or double-processing entries; entries pending on a
 * dead consumer hold back trimming and are claimed; the stream is trimmed after acknowledgement;
 * `stop()` resolves with everything in hand acknowledged.
 */
import { expect } from "chai";
import type { Redis } from "ioredis";
import { EventPersister, PERSIST_GROUP } from "../../src/events/persister.js";
import { createLogger } from "../../src/obs/logger.js";
import type { RedisKeys } from "../../src/redis/keys.js";
import type { Store } from "../../src/store/port.js";
import {
  EventsFixture,
  event,
  eventSettings,
  handEnvelope,
  progressEvents,
  sleep,
  storedFromEnvelope,
  target,
  waitFor,
} from "./helpers.js";

const logger = createLogger("test-persister", "error");

type Command = (...args: unknown[]) => Promise<unknown>;

/** Replaces one command method of a connection with `wrap` (a spy that may call the real one). */
function wrapCommand(
  conn: Redis,
  name: "xinfo" | "xpending" | "xtrim",
  wrap: (real: Command, args: unknown[]) => Promise<unknown>,
): void {
  const commands = conn as unknown as Record<string, Command>;
  const real = (commands[name] as Command).bind(conn);
  commands[name] = (...args) => wrap(real, args);
}

describe("events: EventPersister", () => {
  let fx: EventsFixture;
  let running: EventPersister[] = [];

  before(async () => {
    fx = await EventsFixture.open("persist");
  });
  afterEach(async () => {
    await Promise.all(running.map((p) => p.stop()));
    running = [];
  });
  after(async () => {
    await fx.close();
  });

  /** Starts a persister on its own (blocking) connection. */
  async function startPersister(
    keys: RedisKeys,
    options: { store?: Store; conn?: Redis; backlogWarnEntries?: number } = {},
  ): Promise<EventPersister> {
    const persister = new EventPersister(
      options.conn ?? fx.connection(),
      keys,
      options.store ?? fx.store,
      500,
      logger,
      options.backlogWarnEntries ?? 100_000,
    );
    await persister.start();
    running.push(persister);
    return persister;
  }

  async function pendingCount(keys: RedisKeys): Promise<number> {
    const summary = (await fx.redis.xpending(keys.persistStream, PERSIST_GROUP)) as [number];
    return summary[0];
  }

  async function storedEnvelopes(sessionId: string): Promise<string[]> {
    return (await fx.store.readEvents(sessionId, 0, 10_000)).map((e) => e.envelope);
  }

  async function hotEnvelopes(sessionId: string, keys: RedisKeys): Promise<string[]> {
    return (await fx.hot(sessionId, keys)).map(([, e]) => e);
  }

  it("persists every appended event byte for byte, then trims the acknowledged stream", async () => {
    const keys = fx.freshKeys();
    const appender = fx.appender(eventSettings(), keys);
    const s1 = fx.id("s");
    const s2 = fx.id("s");
    // Some events before the persister starts, some after.
    await appender.appendBatch(target(s1, "t1"), progressEvents("a", 3), { newSession: true });
    await appender.appendBatch(
      target(s2, "t1"),
      [event("llm_output_delta", "d0", { delta: 'ünïcödé "quoted"\nline ✓' })],
      { newSession: true },
    );
    const persister = await startPersister(keys);
    await appender.appendBatch(target(s1, "t1"), progressEvents("a", 4, 3));
    await appender.appendBatch(target(s2, "t1"), [event("turn_terminal", "end")], {
      terminal: true,
    });

    await waitFor(
      async () => (await fx.store.maxSeq(s1)) === 7 && (await fx.store.maxSeq(s2)) === 2,
    );
    for (const s of [s1, s2]) {
      const hot = await hotEnvelopes(s, keys);
      expect(await storedEnvelopes(s)).to.deep.equal(hot);
      const rows = await fx.store.readEvents(s, 0, 100);
      expect(rows).to.deep.equal(hot.map(storedFromEnvelope));
    }
    expect(persister.stats.eventsPersisted).to.equal(9);

    // Everything is acknowledged, so the stream is trimmed to nothing.
    await waitFor(async () => (await fx.redis.xlen(keys.persistStream)) === 0);
    expect(await pendingCount(keys)).to.equal(0);
  });

  it("stores each envelope's bytes as they are in the payload, never re-serialised", async () => {
    const keys = fx.freshKeys();
    const s = fx.id("s");
    // Valid envelopes that JSON.stringify would not reproduce: spacing, \u escapes, 1.0.
    const lines = [
      `{"v":1, "seq":1,"session_id":"${s}","turn_id":"t","user_id":"u","type":"progress","ts":5,"data":{"t":"\\u00e9"}}`,
      `{"v":1,"seq":2 ,"session_id":"${s}","turn_id":"t","user_id":"u","type":"turn_terminal","ts":6,"data":{"x":1.0}}`,
    ];
    await fx.redis.xadd(keys.persistStream, "*", "e", lines.join("\n"));
    await startPersister(keys);
    await waitFor(async () => (await fx.store.maxSeq(s)) === 2);
    const rows = await fx.store.readEvents(s, 0, 100);
    expect(rows.map((r) => r.envelope)).to.deep.equal(lines);
    expect(rows.map((r) => [r.seq, r.turnId, r.type, r.ts])).to.deep.equal([
      [1, "t", "progress", 5],
      [2, "t", "turn_terminal", 6],
    ]);
  });

  it("inserts a re-delivered entry's events only once", async () => {
    const keys = fx.freshKeys();
    const s = fx.id("s");
    await fx
      .appender(eventSettings(), keys)
      .appendBatch(target(s, "t1"), progressEvents("a", 3), { newSession: true });
    const [payload] = await fx.persistPayloads(keys);
    // The same payload delivered again (e.g. an append retried after a lost reply).
    await fx.redis.xadd(keys.persistStream, "*", "e", payload as string);

    const persister = await startPersister(keys);
    await waitFor(() => persister.stats.eventsPersisted === 6);
    expect(await storedEnvelopes(s)).to.deep.equal(await hotEnvelopes(s, keys));
    expect(await fx.store.readEvents(s, 0, 100)).to.have.length(3);
    await waitFor(async () => (await pendingCount(keys)) === 0);
    await waitFor(async () => (await fx.redis.xlen(keys.persistStream)) === 0);
  });

  it("shares the stream between two persisters without losing or repeating an entry", async () => {
    const keys = fx.freshKeys();
    const appender = fx.appender(eventSettings(), keys);
    const a = await startPersister(keys);
    const b = await startPersister(keys);
    const sessions = [fx.id("s"), fx.id("s"), fx.id("s")];
    let total = 0;
    for (let i = 0; i < 60; i++) {
      const s = sessions[i % sessions.length] as string;
      const count = 1 + (i % 3);
      await appender.appendBatch(target(s, "t1"), progressEvents(`b${i}`, count), {
        newSession: i < sessions.length,
      });
      total += count;
      await sleep(3);
    }
    await waitFor(async () => {
      let stored = 0;
      for (const s of sessions) stored += (await fx.store.readEvents(s, 0, 1000)).length;
      return stored === total;
    });
    for (const s of sessions) {
      expect(await storedEnvelopes(s)).to.deep.equal(await hotEnvelopes(s, keys));
    }
    expect(a.stats.eventsPersisted, "first persister got work").to.be.above(0);
    expect(b.stats.eventsPersisted, "second persister got work").to.be.above(0);
    expect(a.stats.eventsPersisted + b.stats.eventsPersisted, "no entry twice").to.equal(total);
  });

  it("never trims below an entry a dead consumer left pending, and claims it once it is idle", async () => {
    const keys = fx.freshKeys();
    const s = fx.id("s");
    const appender = fx.appender(eventSettings(), keys);
    await fx.redis.xgroup("CREATE", keys.persistStream, PERSIST_GROUP, "0", "MKSTREAM");
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 2), { newSession: true }); // e0: 1-2
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 2, 2)); // e1: 3-4
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 2, 4)); // e2: 5-6
    const [e0, e1, e2] = (await fx.redis.xrange(keys.persistStream, "-", "+")).map(([id]) => id);

    // A persister "dead" took e0 and e1, stored and acknowledged e0, and died holding e1.
    await fx.redis.xreadgroup(
      "GROUP",
      PERSIST_GROUP,
      "dead",
      "COUNT",
      2,
      "STREAMS",
      keys.persistStream,
      ">",
    );
    const envelopes = await hotEnvelopes(s, keys);
    await fx.store.appendEvents(envelopes.slice(0, 2).map(storedFromEnvelope));
    await fx.redis.xack(keys.persistStream, PERSIST_GROUP, e0 as string);

    // Watch the live persister's trims.
    const conn = fx.connection();
    const trims: string[] = [];
    wrapCommand(conn, "xtrim", (real, args) => {
      trims.push(String(args[2]));
      return real(...args);
    });
    await startPersister(keys, { conn });

    // It stores e2 and trims e0, but keeps e1 (pending, not idle long enough to claim) and e2.
    await waitFor(async () => (await fx.store.maxSeq(s)) === 6);
    const storedAfterTrim = trims.length;
    await waitFor(() => trims.length >= storedAfterTrim + 2); // housekeeping ran after the ack
    expect((await fx.redis.xrange(keys.persistStream, "-", "+")).map(([id]) => id)).to.deep.equal([
      e1,
      e2,
    ]);
    expect(await fx.store.readEvents(s, 2, 100)).to.have.length(2); // 5, 6 only: 3-4 still missing

    // Once e1 has been idle past the claim threshold, the live persister takes it over.
    await fx.redis.call(
      "XCLAIM",
      keys.persistStream,
      PERSIST_GROUP,
      "dead",
      0,
      e1 as string,
      "IDLE",
      60_000,
    );
    await waitFor(async () => (await fx.store.readEvents(s, 0, 100)).length === 6);
    expect(await storedEnvelopes(s)).to.deep.equal(envelopes);
    await waitFor(async () => (await pendingCount(keys)) === 0);
    await waitFor(async () => (await fx.redis.xlen(keys.persistStream)) === 0);
  });

  it("stop() resolves with the batch in hand acknowledged and consumes nothing after", async () => {
    const keys = fx.freshKeys();
    const s = fx.id("s");
    const appender = fx.appender(eventSettings(), keys);
    const persister = await startPersister(keys);
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 3), { newSession: true });
    await waitFor(async () => (await fx.store.maxSeq(s)) === 3);
    await persister.stop();
    running = [];
    expect(await pendingCount(keys)).to.equal(0);

    await appender.appendBatch(target(s, "t1"), progressEvents("a", 2, 3));
    await sleep(100);
    expect(await fx.store.maxSeq(s)).to.equal(3);
    const groups = (await fx.redis.xinfo("GROUPS", keys.persistStream)) as unknown[][];
    const group = groups.find((g) => g[1] === PERSIST_GROUP) as unknown[];
    const delivered = group[group.indexOf("last-delivered-id") + 1];
    const newest = (await fx.redis.xrevrange(keys.persistStream, "+", "-", "COUNT", 1))[0]?.[0];
    expect(delivered, "the new entry was not delivered to anyone").to.not.equal(newest);

    // A stopped persister can be replaced: the next one picks the entry up.
    await startPersister(keys);
    await waitFor(async () => (await fx.store.maxSeq(s)) === 5);
  });

  it("stop() resolves when stopped right after start", async () => {
    const keys = fx.freshKeys();
    const persister = new EventPersister(fx.connection(), keys, fx.store, 500, logger, 100_000);
    await persister.start();
    await persister.stop();
    // Stopping twice (and a never-started persister) is harmless too.
    await persister.stop();
    await new EventPersister(fx.connection(), keys, fx.store, 500, logger, 100_000).stop();
  });

  it("keeps an entry another persister read between this persister's XPENDING and XINFO", async () => {
    const keys = fx.freshKeys();
    const s = fx.id("s");
    const conn = fx.connection();
    let xinfoCalls = 0;
    let armed = false;
    let raced: string | null = null;
    let xpendingAfterRace = 0;
    wrapCommand(conn, "xinfo", async (real, args) => {
      xinfoCalls++;
      if (armed) {
        armed = false;
        raced = await fx.redis.xadd(keys.persistStream, "*", "e", handEnvelope(s, 1, "t1"));
        await fx.redis.xreadgroup(
          "GROUP",
          PERSIST_GROUP,
          "other",
          "COUNT",
          10,
          "STREAMS",
          keys.persistStream,
          ">",
        );
      }
      return real(...args);
    });
    wrapCommand(conn, "xpending", (real, args) => {
      if (raced) xpendingAfterRace++;
      return real(...args);
    });
    let trimmedAfterRace = false;
    wrapCommand(conn, "xtrim", async (real, args) => {
      const result = await real(...args);
      if (raced) trimmedAfterRace = true;
      return result;
    });
    await startPersister(keys, { conn });
    await waitFor(() => xinfoCalls >= 1); // first housekeeping done, the persister is idle
    armed = true;
    // The racing housekeeping is over (checked before the next one's XAUTOCLAIM, which would
    // drop the orphaned pending entry without a trace).
    await waitFor(() => trimmedAfterRace || xpendingAfterRace >= 1);

    const ids = (await fx.redis.xrange(keys.persistStream, "-", "+")).map(([id]) => id);
    expect(ids, "the entry pending on 'other' is still in the stream").to.include(raced);
    const pending = (await fx.redis.xpending(keys.persistStream, PERSIST_GROUP, "-", "+", 10)) as [
      string,
      string,
    ][];
    expect(pending.map(([id, consumer]) => [id, consumer])).to.deep.equal([[raced, "other"]]);
  });

  it("retries a batch the store rejected before storing later ones", async () => {
    const keys = fx.freshKeys();
    const s = fx.id("s");
    let failures = 0;
    const flaky = new Proxy(fx.store, {
      get(store, prop) {
        if (prop === "appendEvents") {
          return async (events: Parameters<Store["appendEvents"]>[0]) => {
            if (failures === 0) {
              failures++;
              throw new Error("store down");
            }
            return store.appendEvents(events);
          };
        }
        const value = Reflect.get(store, prop, store);
        return typeof value === "function" ? value.bind(store) : value;
      },
    }) as Store;
    const appender = fx.appender(eventSettings(), keys);
    await startPersister(keys, { store: flaky });
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 2), { newSession: true });
    await waitFor(() => failures === 1);
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 1, 2));
    await waitFor(async () => (await fx.store.maxSeq(s)) === 3);
    expect((await fx.store.readEvents(s, 0, 100)).map((e) => e.seq)).to.deep.equal([1, 2, 3]);
  });
});
