/**
 * `TurnEmitter` over a real EventAppender: batching of same-tick emits into one append, order
 * across many emits and flushes, coalescing of LLM text deltas (per window and per char
 * threshold, flushed before any following event), the sticky failure after a lost lease,
 * `emitTerminal` and `dispose`.
 */
import { expect } from "chai";
import { LeaseLostError } from "../../src/events/appender.js";
import { type DeltaSettings, TurnEmitter } from "../../src/events/turn-emitter.js";
import type { RedisKeys } from "../../src/redis/keys.js";
import { EventsFixture, eventSettings, sleep, target, waitFor } from "./helpers.js";

/** Deltas only flush on the char threshold or an explicit close: no timer in the way. */
const NO_WINDOW: DeltaSettings = { deltaFlushMs: 600_000, deltaFlushChars: 1_000_000 };

describe("events: TurnEmitter", () => {
  let fx: EventsFixture;

  before(async () => {
    fx = await EventsFixture.open("emitter");
  });
  after(async () => {
    await fx.close();
  });

  /** An emitter on a fresh session (seq starts at 1) and its own persist stream. */
  async function setup(
    delta: DeltaSettings = NO_WINDOW,
    fence?: string,
  ): Promise<{ emitter: TurnEmitter; sessionId: string; turnId: string; keys: RedisKeys }> {
    const keys = fx.freshKeys();
    const sessionId = fx.id("s");
    const t = target(sessionId, "t1");
    const appender = fx.appender(eventSettings(), keys);
    // Open the session (seq counter at 0) without appending anything.
    await fx.redis.set(keys.sessionSeq(sessionId), 0);
    if (fence) await fx.redis.set(keys.sessionLease(sessionId), fence);
    const emitter = new TurnEmitter(appender, t, delta, fence);
    return { emitter, sessionId, turnId: t.turnId, keys };
  }

  async function logOf(sessionId: string, keys: RedisKeys) {
    return (await fx.hot(sessionId, keys)).map(([id, envelope]) => ({
      id,
      ...(JSON.parse(envelope) as {
        seq: number;
        type: string;
        turn_id: string;
        data: Record<string, unknown>;
      }),
    }));
  }

  it("sends the events emitted in one tick as one append", async () => {
    const { emitter, sessionId, keys } = await setup();
    emitter.emit("progress", "a", { i: 0 });
    emitter.emit("tool_call", "b", { i: 1 });
    emitter.emit("tool_result", "c", { i: 2 });
    await emitter.flush();
    expect(await fx.redis.xlen(keys.persistStream)).to.equal(1);
    const log = await logOf(sessionId, keys);
    expect(log.map((e) => [e.seq, e.type])).to.deep.equal([
      [1, "progress"],
      [2, "tool_call"],
      [3, "tool_result"],
    ]);
    expect(emitter.lastSeq).to.equal(3);
  });

  it("appends on its own (without flush) once the event loop turns", async () => {
    const { emitter, sessionId, keys } = await setup();
    emitter.emit("progress", "a", {});
    emitter.emit("progress", "b", {});
    await waitFor(async () => (await fx.redis.xlen(keys.sessionEvents(sessionId))) === 2);
    expect(await fx.redis.xlen(keys.persistStream)).to.equal(1);
  });

  it("uses a separate append for emits in different ticks", async () => {
    const { emitter, keys } = await setup();
    emitter.emit("progress", "a", {});
    await new Promise((resolve) => setImmediate(resolve));
    emitter.emit("progress", "b", {});
    await emitter.flush();
    expect(await fx.redis.xlen(keys.persistStream)).to.equal(2);
  });

  it("keeps emission order across many emits, ticks and flushes", async () => {
    const { emitter, sessionId, turnId, keys } = await setup();
    const total = 200;
    for (let i = 0; i < total; i++) {
      emitter.emit("progress", `p.${i}`, { i });
      if (i % 7 === 0) await new Promise((resolve) => setImmediate(resolve));
      if (i % 13 === 0) await sleep(1);
      if (i % 31 === 0) await emitter.flush();
    }
    await emitter.flush();
    const log = await logOf(sessionId, keys);
    expect(log.map((e) => e.data.i)).to.deep.equal(Array.from({ length: total }, (_, i) => i));
    expect(log.map((e) => e.seq)).to.deep.equal(Array.from({ length: total }, (_, i) => i + 1));
    expect(log.every((e) => e.turn_id === turnId)).to.be.true;
    expect(emitter.lastSeq).to.equal(total);
    // Several appends, not one per event and not one overall.
    const appends = await fx.redis.xlen(keys.persistStream);
    expect(appends).to.be.above(1).and.below(total);
  });

  describe("deltas", () => {
    it("coalesces text until the char threshold into one llm_output_delta", async () => {
      const { emitter, sessionId, keys } = await setup({
        deltaFlushMs: 600_000,
        deltaFlushChars: 10,
      });
      emitter.delta("abc", "r1.llm", { round: 1 });
      emitter.delta("def", "r1.llm", { round: 1 });
      emitter.delta("ghij", "r1.llm", { round: 1 }); // 10 chars: closes the delta
      emitter.delta("", "r1.llm", { round: 1 }); // empty text opens nothing
      await emitter.flush();
      const log = await logOf(sessionId, keys);
      expect(log).to.have.length(1);
      expect(log[0]?.type).to.equal("llm_output_delta");
      expect(log[0]?.data).to.deep.equal({ round: 1, delta: "abcdefghij" });
    });

    it("starts a new delta (new step) after the threshold closed one", async () => {
      const { emitter, sessionId, turnId, keys } = await setup({
        deltaFlushMs: 600_000,
        deltaFlushChars: 4,
      });
      emitter.delta("abcd", "r1.llm", {});
      emitter.delta("ef", "r1.llm", {});
      await emitter.flush();
      const log = await logOf(sessionId, keys);
      expect(log.map((e) => e.data.delta)).to.deep.equal(["abcd", "ef"]);
      const steps = await fx.redis.hgetall(keys.turnSteps(turnId));
      expect(steps).to.include({ "r1.llm.d0": "1", "r1.llm.d1": "2" });
    });

    it("flushes one delta per time window", async () => {
      const { emitter, sessionId, keys } = await setup({
        deltaFlushMs: 30,
        deltaFlushChars: 1_000_000,
      });
      emitter.delta("He", "r1.llm", {});
      emitter.delta("llo", "r1.llm", {});
      // No flush call: only the window timer can send it.
      await waitFor(async () => (await fx.redis.xlen(keys.sessionEvents(sessionId))) >= 1);
      emitter.delta(" world", "r1.llm", {});
      await waitFor(async () => (await fx.redis.xlen(keys.sessionEvents(sessionId))) >= 2);
      const log = await logOf(sessionId, keys);
      expect(log.map((e) => [e.type, e.data.delta])).to.deep.equal([
        ["llm_output_delta", "Hello"],
        ["llm_output_delta", " world"],
      ]);
    });

    it("flushes the open delta before a following emit", async () => {
      const { emitter, sessionId, keys } = await setup();
      emitter.emit("progress", "r1.start", {});
      emitter.delta("partial ", "r1.llm", { round: 1 });
      emitter.delta("answer", "r1.llm", { round: 1 });
      emitter.emit("llm_output", "r1.out", { text: "partial answer" });
      emitter.delta("more", "r2.llm", { round: 2 });
      await emitter.flush();
      const log = await logOf(sessionId, keys);
      expect(log.map((e) => [e.seq, e.type, e.data.delta ?? null])).to.deep.equal([
        [1, "progress", null],
        [2, "llm_output_delta", "partial answer"],
        [3, "llm_output", null],
        [4, "llm_output_delta", "more"],
      ]);
      expect(log[3]?.data.round).to.equal(2);
    });
  });

  describe("failure", () => {
    it("rejects every later flush after a LeaseLostError and appends nothing more", async () => {
      const { emitter, sessionId, keys } = await setup(NO_WINDOW, "t1:token-a");
      emitter.emit("progress", "a", {});
      await emitter.flush();
      expect(await fx.redis.xlen(keys.sessionEvents(sessionId))).to.equal(1);

      await fx.redis.set(keys.sessionLease(sessionId), "t1:token-b");
      emitter.emit("progress", "b", {});
      const first = await emitter.flush().then(
        () => null,
        (err: unknown) => err,
      );
      expect(first).to.be.instanceOf(LeaseLostError);

      // Even with the lease back, the emitter stays failed: no event after a hole.
      await fx.redis.set(keys.sessionLease(sessionId), "t1:token-a");
      emitter.emit("progress", "c", {});
      emitter.delta("text", "r1.llm", {});
      const second = await emitter.flush().then(
        () => null,
        (err: unknown) => err,
      );
      expect(second).to.equal(first);
      await sleep(20);
      const log = await logOf(sessionId, keys);
      expect(log.map((e) => e.seq)).to.deep.equal([1]);
      expect(await fx.redis.get(keys.sessionSeq(sessionId))).to.equal("1");
      expect(emitter.lastSeq).to.equal(1);
    });

    it("fails emitTerminal too once the lease is lost", async () => {
      const { emitter, sessionId, keys } = await setup(NO_WINDOW, "t1:token-a");
      await fx.redis.set(keys.sessionLease(sessionId), "t1:someone-else");
      const err = await emitter.emitTerminal("end", { status: "completed" }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(LeaseLostError);
      expect(await fx.redis.exists(keys.sessionEvents(sessionId))).to.equal(0);
    });
  });

  describe("emitTerminal and dispose", () => {
    it("emitTerminal appends turn_terminal last, as a terminal batch, and returns its seq", async () => {
      const { emitter, sessionId, turnId, keys } = await setup();
      emitter.emit("progress", "a", {});
      emitter.delta("xyz", "r1.llm", {});
      const seq = await emitter.emitTerminal("end", { status: "completed" });
      expect(seq).to.equal(3);
      expect(emitter.lastSeq).to.equal(3);
      const log = await logOf(sessionId, keys);
      expect(log.map((e) => e.type)).to.deep.equal([
        "progress",
        "llm_output_delta",
        "turn_terminal",
      ]);
      expect(log[2]?.data).to.deep.equal({ status: "completed" });
      // Sent with `terminal: true`: the step hash got its short expiry.
      const ttl = await fx.redis.pttl(keys.turnSteps(turnId));
      expect(ttl).to.be.above(0).and.at.most(60_000);
    });

    it("emitTerminal on a retried turn returns the original terminal seq", async () => {
      const first = await setup();
      await first.emitter.emitTerminal("end", {});
      const again = new TurnEmitter(
        fx.appender(eventSettings(), first.keys),
        target(first.sessionId, "t1"),
        NO_WINDOW,
        undefined,
      );
      expect(await again.emitTerminal("end", {})).to.equal(1);
      expect(await fx.redis.xlen(first.keys.sessionEvents(first.sessionId))).to.equal(1);
    });

    it("dispose drops queued events and the open delta", async () => {
      const { emitter, sessionId, keys } = await setup({
        deltaFlushMs: 10,
        deltaFlushChars: 1_000_000,
      });
      emitter.delta("dropped", "r1.llm", {});
      emitter.emit("progress", "a", {});
      emitter.delta("dropped too", "r1.llm", {});
      emitter.dispose();
      await sleep(50);
      expect(await fx.redis.exists(keys.sessionEvents(sessionId))).to.equal(0);
    });
  });
});
