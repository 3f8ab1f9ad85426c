/**
 * The append script through `EventAppender.appendBatch`, against the real Redis and a real
 * SqliteStore: seq assignment (new session, continuation, counter rebuild), step idempotency,
 * the exact envelope bytes, lease fencing, delivery to hot stream / persist stream / live
 * channel, and the TTLs a running vs. terminal batch leaves behind.
 */

import { expect } from "chai";
import type { Redis } from "ioredis";
import { LeaseLostError } from "../../src/events/appender.js";
import { EventEnvelopeSchema } from "../../src/events/envelope.js";
import { untilReady } from "../../src/redis/connection.js";
import {
  EventsFixture,
  event,
  eventSettings,
  handEnvelope,
  progressEvents,
  storedFromEnvelope,
  target,
  waitFor,
} from "./helpers.js";

describe("events: EventAppender / append script", () => {
  let fx: EventsFixture;

  before(async () => {
    fx = await EventsFixture.open("append");
  });
  after(async () => {
    await fx.close();
  });

  describe("seq assignment", () => {
    it("numbers a new session 1..N and continues across batches", async () => {
      const s = fx.id("s");
      const appender = fx.appender();
      const first = await appender.appendBatch(target(s, "t1"), progressEvents("a", 4), {
        newSession: true,
      });
      expect(first).to.deep.equal([1, 2, 3, 4]);
      const second = await appender.appendBatch(target(s, "t1"), progressEvents("a", 3, 4));
      expect(second).to.deep.equal([5, 6, 7]);
      const third = await appender.appendBatch(target(s, "t2"), progressEvents("b", 1));
      expect(third).to.deep.equal([8]);

      expect(await fx.redis.get(fx.keys.sessionSeq(s))).to.equal("8");
      const hot = await fx.hot(s);
      expect(hot.map(([id]) => id)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8].map((n) => `${n}-0`));
      expect(hot.map(([, e]) => JSON.parse(e).seq)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    });

    it("keeps sessions' seqs independent", async () => {
      const a = fx.id("s");
      const b = fx.id("s");
      const appender = fx.appender();
      await appender.appendBatch(target(a, "ta"), progressEvents("x", 3), { newSession: true });
      const seqs = await appender.appendBatch(target(b, "tb"), progressEvents("x", 2), {
        newSession: true,
      });
      expect(seqs).to.deep.equal([1, 2]);
    });

    it("rebuilds a missing counter from the store when Redis has nothing", async () => {
      const s = fx.id("s");
      await fx.store.appendEvents(
        [1, 2, 3, 4, 5].map((seq) => storedFromEnvelope(handEnvelope(s, seq, "t-old"))),
      );
      expect(await fx.redis.exists(fx.keys.sessionSeq(s))).to.equal(0);

      const seqs = await fx.appender().appendBatch(target(s, "t1"), progressEvents("a", 2));
      expect(seqs).to.deep.equal([6, 7]);
      expect(await fx.redis.get(fx.keys.sessionSeq(s))).to.equal("7");
    });

    it("rebuilds from the hot stream when it is ahead of the store", async () => {
      const s = fx.id("s");
      await fx.store.appendEvents(
        [1, 2, 3, 4, 5].map((seq) => storedFromEnvelope(handEnvelope(s, seq, "t-old"))),
      );
      for (let seq = 1; seq <= 8; seq++) {
        await fx.redis.xadd(fx.keys.sessionEvents(s), `${seq}-0`, "e", handEnvelope(s, seq, "t"));
      }
      const seqs = await fx.appender().appendBatch(target(s, "t1"), progressEvents("a", 1));
      expect(seqs).to.deep.equal([9]);
    });

    it("rebuilds from the store when it is ahead of the (trimmed) hot stream", async () => {
      const s = fx.id("s");
      await fx.store.appendEvents(
        [1, 2, 3, 4, 5, 6, 7].map((seq) => storedFromEnvelope(handEnvelope(s, seq, "t-old"))),
      );
      for (const seq of [3, 4]) {
        await fx.redis.xadd(fx.keys.sessionEvents(s), `${seq}-0`, "e", handEnvelope(s, seq, "t"));
      }
      const seqs = await fx.appender().appendBatch(target(s, "t1"), progressEvents("a", 1));
      expect(seqs).to.deep.equal([8]);
    });

    it("starts at 1 without `newSession` when no event exists anywhere", async () => {
      const s = fx.id("s");
      const seqs = await fx.appender().appendBatch(target(s, "t1"), progressEvents("a", 2));
      expect(seqs).to.deep.equal([1, 2]);
    });

    it("never resets an existing counter, even when told the session is new", async () => {
      const s = fx.id("s");
      const appender = fx.appender();
      await appender.appendBatch(target(s, "t1"), progressEvents("a", 3), { newSession: true });
      const seqs = await appender.appendBatch(target(s, "t2"), progressEvents("b", 1), {
        newSession: true,
      });
      expect(seqs).to.deep.equal([4]);
    });

    it("keeps the hot stream a contiguous suffix ending at the newest seq when capped", async () => {
      const s = fx.id("s");
      const appender = fx.appender(eventSettings({ hotStreamMaxLen: 5 }));
      await appender.appendBatch(target(s, "t1"), progressEvents("a", 300), { newSession: true });
      const ids = (await fx.hot(s)).map(([id]) => Number.parseInt(id, 10));
      // MAXLEN ~ trims whole stream nodes, so the length is only roughly capped.
      expect(ids.length).to.be.below(300).and.at.least(5);
      expect(ids.at(-1)).to.equal(300);
      const first = ids[0] as number;
      expect(ids).to.deep.equal(Array.from({ length: ids.length }, (_, k) => first + k));
    });
  });

  describe("idempotency and the envelope", () => {
    it("appends a step repeated within one batch once and returns its seq for both", async () => {
      const s = fx.id("s");
      const seqs = await fx
        .appender()
        .appendBatch(
          target(s, "t1"),
          [
            event("progress", "r1.a", { n: 1 }),
            event("progress", "r1.a", { n: 2 }),
            event("progress", "r1.b"),
          ],
          { newSession: true },
        );
      expect(seqs).to.deep.equal([1, 1, 2]);
      const hot = await fx.hot(s);
      expect(hot).to.have.length(2);
      expect(JSON.parse((hot[0] as [string, string])[1]).data).to.deep.equal({ n: 1 });
    });

    it("does not append a step again on a second call and returns the original seq", async () => {
      const s = fx.id("s");
      const t = target(s, "t1");
      const appender = fx.appender();
      expect(
        await appender.appendBatch(t, [event("progress", "a"), event("progress", "b")], {
          newSession: true,
        }),
      ).to.deep.equal([1, 2]);
      const persistBefore = await fx.redis.xlen(fx.keys.persistStream);

      // A retry of "b" together with a new "c": only "c" is new.
      expect(
        await appender.appendBatch(t, [event("progress", "b"), event("progress", "c")]),
      ).to.deep.equal([2, 3]);
      expect(await fx.redis.xlen(fx.keys.persistStream)).to.equal(persistBefore + 1);
      const newest = (await fx.redis.xrevrange(fx.keys.persistStream, "+", "-", "COUNT", 1))[0];
      expect(JSON.parse(newest?.[1][1] as string).seq).to.equal(3);

      // A full retry appends, persists and publishes nothing and still answers the seqs.
      const counterBefore = await fx.redis.get(fx.keys.sessionSeq(s));
      expect(
        await appender.appendBatch(t, [event("progress", "a"), event("progress", "c")]),
      ).to.deep.equal([1, 3]);
      expect(await fx.redis.get(fx.keys.sessionSeq(s))).to.equal(counterBefore);
      expect(await fx.redis.xlen(fx.keys.persistStream)).to.equal(persistBefore + 1);
      expect((await fx.hot(s)).map(([id]) => id)).to.deep.equal(["1-0", "2-0", "3-0"]);
      expect(await fx.redis.hget(fx.keys.turnSteps(t.turnId), "_last")).to.equal("3");
    });

    it("scopes step keys to the turn", async () => {
      const s = fx.id("s");
      const appender = fx.appender();
      await appender.appendBatch(target(s, "ta"), [event("progress", "x")], { newSession: true });
      const seqs = await appender.appendBatch(target(s, "tb"), [event("progress", "x")]);
      expect(seqs).to.deep.equal([2]);
    });

    it("writes the envelope as exactly the v1 JSON, in field order", async () => {
      const s = fx.id("s");
      const data = { text: 'quote " backslash \\ newline \n unicode é ✓', nested: { a: [1, 2] } };
      const t = target(s, "turn-1", "user-9");
      await fx
        .appender()
        .appendBatch(t, [event("llm_output", "r1.out", data, 1234)], { newSession: true });
      const [[, envelope]] = (await fx.hot(s)) as [[string, string]];
      expect(envelope).to.equal(
        `{"v":1,"seq":1,"session_id":"${s}","turn_id":"${t.turnId}","user_id":"user-9","type":"llm_output","ts":1234,"data":${JSON.stringify(data)}}`,
      );
      expect(envelope).not.to.include("\n");
      const parsed = EventEnvelopeSchema.parse(JSON.parse(envelope));
      expect(parsed).to.deep.equal({
        v: 1,
        seq: 1,
        session_id: s,
        turn_id: t.turnId,
        user_id: "user-9",
        type: "llm_output",
        ts: 1234,
        data,
      });
    });

    it("puts trace_id after user_id when the target has one", async () => {
      const s = fx.id("s");
      await fx
        .appender()
        .appendBatch({ ...target(s, "t1", "u1"), traceId: "trace-7" }, [event("progress", "p")], {
          newSession: true,
        });
      const [[, envelope]] = (await fx.hot(s)) as [[string, string]];
      expect(envelope.startsWith(`{"v":1,"seq":1,"session_id":"${s}","turn_id":"${s}.t1",`)).to.be
        .true;
      expect(envelope).to.include(`"user_id":"u1","trace_id":"trace-7","type":"progress"`);
      expect(JSON.parse(envelope).trace_id).to.equal("trace-7");
    });

    it("returns [] for an empty batch and touches nothing", async () => {
      const s = fx.id("s");
      expect(await fx.appender().appendBatch(target(s, "t1"), [])).to.deep.equal([]);
      expect(await fx.redis.exists(fx.keys.sessionSeq(s), fx.keys.sessionEvents(s))).to.equal(0);
    });
  });

  describe("fencing", () => {
    async function snapshot(s: string, turn: string) {
      return {
        seq: await fx.redis.get(fx.keys.sessionSeq(s)),
        hot: await fx.hot(s),
        persist: await fx.redis.xlen(fx.keys.persistStream),
        steps: await fx.redis.hgetall(fx.keys.turnSteps(target(s, turn).turnId)),
      };
    }

    it("refuses a batch whose fence does not match the lease, appending nothing", async () => {
      const s = fx.id("s");
      const appender = fx.appender();
      await appender.appendBatch(target(s, "t0"), progressEvents("q", 2), { newSession: true });
      await fx.redis.set(fx.keys.sessionLease(s), "t1:new-owner");
      const before = await snapshot(s, "t1");

      let caught: unknown;
      try {
        await appender.appendBatch(target(s, "t1"), progressEvents("a", 3), {
          fence: "t1:old-owner",
        });
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(LeaseLostError);
      expect((caught as Error).name).to.equal("LeaseLostError");
      expect(await snapshot(s, "t1")).to.deep.equal(before);
    });

    it("refuses a fenced batch when the lease is gone", async () => {
      const s = fx.id("s");
      const appender = fx.appender();
      await appender.appendBatch(target(s, "t0"), progressEvents("q", 1), { newSession: true });
      const before = await snapshot(s, "t1");
      let caught: unknown;
      await appender
        .appendBatch(target(s, "t1"), progressEvents("a", 1), { fence: "t1:tok" })
        .catch((err: unknown) => {
          caught = err;
        });
      expect(caught).to.be.instanceOf(LeaseLostError);
      expect(await snapshot(s, "t1")).to.deep.equal(before);
    });

    it("appends when the fence matches the lease", async () => {
      const s = fx.id("s");
      const appender = fx.appender();
      await appender.appendBatch(target(s, "t0"), progressEvents("q", 1), { newSession: true });
      await fx.redis.set(fx.keys.sessionLease(s), "t1:tok");
      const seqs = await appender.appendBatch(target(s, "t1"), progressEvents("a", 2), {
        fence: "t1:tok",
      });
      expect(seqs).to.deep.equal([2, 3]);
      expect(await fx.hot(s)).to.have.length(3);
    });

    it("fences even when the counter must be rebuilt first", async () => {
      const s = fx.id("s");
      await fx.store.appendEvents([storedFromEnvelope(handEnvelope(s, 1, "t0"))]);
      await fx.redis.set(fx.keys.sessionLease(s), "t1:other");
      let caught: unknown;
      await fx
        .appender()
        .appendBatch(target(s, "t1"), progressEvents("a", 1), { fence: "t1:tok" })
        .catch((err: unknown) => {
          caught = err;
        });
      expect(caught).to.be.instanceOf(LeaseLostError);
      expect(await fx.redis.exists(fx.keys.sessionEvents(s))).to.equal(0);
    });
  });

  describe("delivery", () => {
    let subscriber: Redis;

    before(async () => {
      subscriber = fx.connection();
      // Subscribing while ioredis is still between "connect" and "ready" can lose the
      // subscription's messages; the farm's subscribers wait for "ready" the same way.
      await untilReady(subscriber);
    });

    it("writes each event to the hot stream, the batch to the persist stream and the live channel", async () => {
      const s = fx.id("s");
      const channel = fx.keys.sessionLive(s);
      const messages: string[] = [];
      subscriber.on("message", (ch: string, payload: string) => {
        if (ch === channel) messages.push(payload);
      });
      await subscriber.subscribe(channel);

      const appender = fx.appender();
      const persistBefore = await fx.redis.xlen(fx.keys.persistStream);
      await appender.appendBatch(
        target(s, "t1"),
        [event("progress", "a", { k: 1 }), event("llm_output", "b", { k: 2 })],
        { newSession: true },
      );
      await appender.appendBatch(target(s, "t1"), [event("final", "c", { k: 3 })]);

      const hot = await fx.hot(s);
      expect(hot.map(([id]) => id)).to.deep.equal(["1-0", "2-0", "3-0"]);
      expect(hot.map(([, e]) => JSON.parse(e).type)).to.deep.equal([
        "progress",
        "llm_output",
        "final",
      ]);
      const envelopes = hot.map(([, e]) => e);
      const firstBatch = `${envelopes[0]}\n${envelopes[1]}`;

      const persisted = (await fx.persistPayloads()).slice(persistBefore);
      expect(persisted).to.deep.equal([firstBatch, envelopes[2]]);

      await waitFor(() => messages.length >= 2);
      expect(messages).to.deep.equal([firstBatch, envelopes[2]]);
      await subscriber.unsubscribe(channel);
    });
  });

  describe("expiry", () => {
    const HOUR_MS = 3_600_000;

    it("leaves the step hash, hot stream and counter long-lived while the turn runs", async () => {
      const s = fx.id("s");
      const t = target(s, "t1");
      const settings = eventSettings({ hotStreamTtlAfterTerminalS: 7, seqTtlS: 5_000 });
      await fx.appender(settings).appendBatch(t, progressEvents("a", 2), { newSession: true });
      expect(await fx.redis.pttl(fx.keys.turnSteps(t.turnId))).to.be.above(HOUR_MS);
      expect(await fx.redis.pttl(fx.keys.sessionEvents(s))).to.be.above(HOUR_MS);
      const seqTtl = await fx.redis.pttl(fx.keys.sessionSeq(s));
      expect(seqTtl).to.be.above(4_000_000).and.at.most(5_000_000);
    });

    it("gives the step hash and hot stream a short TTL after a terminal batch", async () => {
      const s = fx.id("s");
      const t = target(s, "t1");
      const settings = eventSettings({ hotStreamTtlAfterTerminalS: 7 });
      const appender = fx.appender(settings);
      await appender.appendBatch(t, progressEvents("a", 2), { newSession: true });
      await appender.appendBatch(t, [event("turn_terminal", "end")], { terminal: true });
      const steps = await fx.redis.pttl(fx.keys.turnSteps(t.turnId));
      expect(steps).to.be.above(0).and.at.most(60_000);
      const hot = await fx.redis.pttl(fx.keys.sessionEvents(s));
      expect(hot).to.be.above(0).and.at.most(7_000);
      // The counter outlives the turn (its own TTL): the next turn continues the session's seqs.
      expect(await fx.redis.pttl(fx.keys.sessionSeq(s))).to.be.above(
        settings.seqTtlS * 1000 - 5_000,
      );
    });
  });
});
