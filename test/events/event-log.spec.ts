/**
 * `EventLog.read` and `headSeq`: serving from the hot stream, falling back to the store when the
 * hot stream was trimmed, splicing store + hot stream without gaps or duplicates, and ending a
 * batch early (never with a hole) when an event is in neither place.
 */
import { expect } from "chai";
import { EventLog, type LogEvent, parseEnvelopeLine } from "../../src/events/event-log.js";
import { EventsFixture, progressEvents, storedFromEnvelope, target } from "./helpers.js";

describe("events: EventLog", () => {
  let fx: EventsFixture;
  let log: EventLog;

  before(async () => {
    fx = await EventsFixture.open("log");
    log = new EventLog(fx.redis, fx.keys, fx.store);
  });
  after(async () => {
    await fx.close();
  });

  /** A session with `count` events appended through the script; returns their envelopes. */
  async function session(count: number): Promise<{ s: string; envelopes: string[] }> {
    const s = fx.id("s");
    await fx
      .appender()
      .appendBatch(target(s, "t1"), progressEvents("p", count), { newSession: true });
    const envelopes = (await fx.hot(s)).map(([, e]) => e);
    expect(envelopes).to.have.length(count);
    return { s, envelopes };
  }

  /** Persists the events with these seqs (1-based) as the persister would. */
  async function persist(envelopes: string[], seqs: number[]): Promise<void> {
    await fx.store.appendEvents(
      seqs.map((seq) => storedFromEnvelope(envelopes[seq - 1] as string)),
    );
  }

  /** Trims the hot stream to the entries with seq >= `from` (0 entries when `from` is past the end). */
  async function trimHotBelow(s: string, from: number): Promise<void> {
    await fx.redis.xtrim(fx.keys.sessionEvents(s), "MINID", `${from}-0`);
  }

  const seqsOf = (events: LogEvent[]) => events.map((e) => e.seq);

  it("parses an envelope line into seq, turn and type, keeping the bytes", () => {
    const line =
      '{"v":1,"seq":7,"session_id":"s","turn_id":"t","user_id":"u","type":"final","ts":1,"data":{}}';
    expect(parseEnvelopeLine(line)).to.deep.equal({
      seq: 7,
      turnId: "t",
      type: "final",
      envelope: line,
    });
  });

  it("serves from the hot stream when it continues the cursor", async () => {
    const { s, envelopes } = await session(5);
    // Nothing is in the store: whatever comes back came from the hot stream.
    expect(await fx.store.maxSeq(s)).to.equal(0);
    const all = await log.read(s, 0, 100);
    expect(seqsOf(all)).to.deep.equal([1, 2, 3, 4, 5]);
    expect(all.map((e) => e.envelope)).to.deep.equal(envelopes);
    expect(all[0]?.turnId).to.equal(target(s, "t1").turnId);
    expect(all[0]?.type).to.equal("progress");
    expect(seqsOf(await log.read(s, 2, 2))).to.deep.equal([3, 4]);
    expect(await log.read(s, 5, 100)).to.deep.equal([]);
  });

  it("serves from the store when the hot stream was trimmed away", async () => {
    const { s, envelopes } = await session(6);
    await persist(envelopes, [1, 2, 3, 4, 5, 6]);
    await trimHotBelow(s, 100);
    expect(await fx.redis.xlen(fx.keys.sessionEvents(s))).to.equal(0);

    const all = await log.read(s, 0, 100);
    expect(seqsOf(all)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(all.map((e) => e.envelope)).to.deep.equal(envelopes);
    expect(seqsOf(await log.read(s, 3, 2))).to.deep.equal([4, 5]);
  });

  it("serves from the store when the hot stream starts after the cursor", async () => {
    const { s, envelopes } = await session(8);
    await persist(envelopes, [1, 2, 3, 4, 5, 6, 7, 8]);
    await trimHotBelow(s, 6);
    expect(seqsOf(await log.read(s, 1, 3))).to.deep.equal([2, 3, 4]);
  });

  it("splices store and hot stream without gaps or duplicates", async () => {
    const { s, envelopes } = await session(8);
    await persist(envelopes, [1, 2, 3, 4, 5]); // overlaps the hot stream on 4, 5
    await trimHotBelow(s, 4);

    const all = await log.read(s, 0, 100);
    expect(seqsOf(all)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(all.map((e) => e.envelope)).to.deep.equal(envelopes);
    expect(seqsOf(await log.read(s, 0, 6))).to.deep.equal([1, 2, 3, 4, 5, 6]);
    expect(seqsOf(await log.read(s, 2, 3))).to.deep.equal([3, 4, 5]);
  });

  it("splices when the store ends exactly where the hot stream begins", async () => {
    const { s, envelopes } = await session(8);
    await persist(envelopes, [1, 2, 3]);
    await trimHotBelow(s, 4);
    const all = await log.read(s, 0, 100);
    expect(seqsOf(all)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(all.map((e) => e.envelope)).to.deep.equal(envelopes);
  });

  it("ends the batch early (no hole) when an event is in neither place", async () => {
    const { s, envelopes } = await session(8);
    await persist(envelopes, [1, 2, 3]); // 4 and 5 not persisted yet…
    await trimHotBelow(s, 6); // …and already trimmed from the hot stream
    expect(seqsOf(await log.read(s, 0, 100))).to.deep.equal([1, 2, 3]);
    expect(await log.read(s, 3, 100)).to.deep.equal([]);
    expect(await log.read(s, 4, 100)).to.deep.equal([]);
    // Past the hole, the hot stream serves again.
    expect(seqsOf(await log.read(s, 5, 100))).to.deep.equal([6, 7, 8]);
  });

  it("stops at a hole inside the store too", async () => {
    const { s, envelopes } = await session(8);
    await persist(envelopes, [1, 2, 4, 5]); // 3 persisted out of order, not yet
    await trimHotBelow(s, 7);
    expect(seqsOf(await log.read(s, 0, 100))).to.deep.equal([1, 2]);
  });

  it("returns nothing for an unknown session", async () => {
    expect(await log.read(fx.id("s"), 0, 100)).to.deep.equal([]);
  });

  describe("headSeq", () => {
    it("answers from the Redis counter", async () => {
      const { s, envelopes } = await session(7);
      await persist(envelopes, [1, 2, 3]);
      expect(await log.headSeq(s)).to.equal(7);
    });

    it("answers from the store when the counter is gone", async () => {
      const { s, envelopes } = await session(7);
      await persist(envelopes, [1, 2, 3, 4, 5]);
      await fx.redis.del(fx.keys.sessionSeq(s));
      expect(await log.headSeq(s)).to.equal(5);
    });

    it("is 0 for a session with no events", async () => {
      expect(await log.headSeq(fx.id("s"))).to.equal(0);
    });
  });
});
