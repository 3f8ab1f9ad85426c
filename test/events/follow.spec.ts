/**
 * `followTurn` with a real `LiveHub` on its own subscriber connection: only the followed turn's
 * events, each exactly once and in seq order, across backlog and live; the end after
 * `turn_terminal`; gap filling from the log when a live message was missed or is bogus; abort;
 * and the idle poll that consults `endedBy` and catches events whose live message was lost.
 */
import { expect } from "chai";
import { EventLog, type LogEvent } from "../../src/events/event-log.js";
import { type FollowOptions, followTurn } from "../../src/events/follow.js";
import { LiveHub } from "../../src/events/live-hub.js";
import {
  EventsFixture,
  event,
  handEnvelope,
  progressEvents,
  sleep,
  target,
  waitFor,
} from "./helpers.js";

/** Long enough that the idle poll never rescues a test that relies on live delivery. */
const NO_POLL_MS = 600_000;

/** An EventLog that counts reads and can run a hook inside a read, after it read Redis. */
class ProbedLog extends EventLog {
  reads = 0;
  duringRead: (() => Promise<void>) | null = null;

  override async read(sessionId: string, after: number, limit: number): Promise<LogEvent[]> {
    this.reads++;
    const result = await super.read(sessionId, after, limit);
    const hook = this.duringRead;
    this.duringRead = null;
    if (hook) await hook();
    return result;
  }
}

describe("events: followTurn", () => {
  let fx: EventsFixture;
  let hub: LiveHub;
  let log: ProbedLog;

  before(async () => {
    fx = await EventsFixture.open("follow");
    hub = await LiveHub.start(fx.connection(), fx.keys);
    log = new ProbedLog(fx.redis, fx.keys, fx.store);
  });
  after(async () => {
    await fx.close();
  });
  afterEach(() => {
    expect(hub.readerCount, "every follower unsubscribed").to.equal(0);
  });

  interface Follower {
    /** Everything yielded so far, flattened. */
    seen: LogEvent[];
    batches: number;
    endedByCalls: number[];
    /** Resolves when the generator returns. */
    done: Promise<void>;
    abort(): void;
  }

  function follow(
    sessionId: string,
    turnId: string,
    options: Partial<Omit<FollowOptions, "sessionId" | "turnId" | "signal">> = {},
  ): Follower {
    const controller = new AbortController();
    const follower: Follower = {
      seen: [],
      batches: 0,
      endedByCalls: [],
      done: Promise.resolve(),
      abort: () => controller.abort(),
    };
    const endedBy = options.endedBy ?? (async () => false);
    const events = followTurn(log, hub, {
      sessionId,
      turnId,
      after: options.after ?? 0,
      idlePollMs: options.idlePollMs ?? NO_POLL_MS,
      signal: controller.signal,
      endedBy: async (cursor) => {
        follower.endedByCalls.push(cursor);
        return endedBy(cursor);
      },
    });
    follower.done = (async () => {
      for await (const batch of events) {
        expect(batch, "no empty batch").to.not.be.empty;
        follower.batches++;
        follower.seen.push(...batch);
      }
    })();
    return follower;
  }

  const seqsOf = (events: LogEvent[]) => events.map((e) => e.seq);

  /** The hot stream's envelopes of one turn, as the follower should yield them. */
  async function turnLog(sessionId: string, turnId: string): Promise<[number, string][]> {
    return (await fx.hot(sessionId))
      .map(([, envelope]) => JSON.parse(envelope) as { seq: number; turn_id: string })
      .filter((e) => e.turn_id === turnId)
      .map((e) => [e.seq, JSON.stringify(e)] as [number, string]);
  }

  function expectExactlyTheLog(seen: LogEvent[], reference: [number, string][]): void {
    expect(seqsOf(seen), "seqs, in order, each once").to.deep.equal(reference.map(([seq]) => seq));
    expect(seen.map((e) => JSON.parse(e.envelope))).to.deep.equal(
      reference.map(([, envelope]) => JSON.parse(envelope)),
    );
  }

  it("yields only its turn's events, in order, across backlog and live, and ends at turn_terminal", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    const b = target(s, "B");
    const appender = fx.appender();
    await appender.appendBatch(a, progressEvents("a", 2), { newSession: true }); // 1, 2
    await appender.appendBatch(b, progressEvents("b", 1)); // 3
    await appender.appendBatch(a, progressEvents("a", 1, 2)); // 4

    const follower = follow(s, a.turnId);
    await waitFor(() => follower.seen.length === 3);
    expect(seqsOf(follower.seen)).to.deep.equal([1, 2, 4]);
    expect(follower.batches, "the backlog comes as one batch").to.equal(1);

    await appender.appendBatch(b, progressEvents("b", 1, 1)); // 5
    await appender.appendBatch(a, progressEvents("a", 2, 3)); // 6, 7
    await appender.appendBatch(b, progressEvents("b", 1, 2)); // 8
    await appender.appendBatch(a, [event("turn_terminal", "end", { status: "completed" })], {
      terminal: true,
    }); // 9
    await appender.appendBatch(b, progressEvents("b", 1, 3)); // 10: after the end
    await follower.done;

    expect(seqsOf(follower.seen)).to.deep.equal([1, 2, 4, 6, 7, 9]);
    expect(follower.seen.every((e) => e.turnId === a.turnId)).to.be.true;
    expect(follower.seen.at(-1)?.type).to.equal("turn_terminal");
    expectExactlyTheLog(follower.seen, await turnLog(s, a.turnId));
    expect(follower.endedByCalls, "never idle long enough to poll").to.deep.equal([]);
  });

  it("yields from the cursor on, not before", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    const appender = fx.appender();
    await appender.appendBatch(a, progressEvents("a", 5), { newSession: true });
    await appender.appendBatch(a, [event("turn_terminal", "end")], { terminal: true });
    const follower = follow(s, a.turnId, { after: 3 });
    await follower.done;
    expect(seqsOf(follower.seen)).to.deep.equal([4, 5, 6]);
  });

  it("delivers every event exactly once while appends race the start of the follow", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    const b = target(s, "B");
    const appender = fx.appender();
    await appender.appendBatch(a, progressEvents("a", 3), { newSession: true });
    const writer = (async () => {
      for (let i = 0; i < 60; i++) {
        const who = i % 3 === 0 ? b : a;
        await appender.appendBatch(who, progressEvents(`w${i}`, 1 + (i % 4)));
        if (i % 5 === 0) await sleep(1);
      }
      await appender.appendBatch(a, [event("turn_terminal", "end")], { terminal: true });
    })();
    const follower = follow(s, a.turnId);
    await writer;
    await follower.done;
    expectExactlyTheLog(follower.seen, await turnLog(s, a.turnId));
    expect(follower.seen.at(-1)?.type).to.equal("turn_terminal");
  });

  it("reads a missed live message's events from the log when the next message shows the gap", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    const appender = fx.appender();
    await appender.appendBatch(a, progressEvents("a", 3), { newSession: true });
    const follower = follow(s, a.turnId);
    await waitFor(() => follower.seen.length === 3);

    // Event 4 reaches the log but its live message is lost (as on a subscriber reconnect).
    await fx.redis.xadd(fx.keys.sessionEvents(s), "4-0", "e", handEnvelope(s, 4, a.turnId));
    await fx.redis.set(fx.keys.sessionSeq(s), 4);
    // Event 5's live message arrives: it does not continue the cursor (3).
    await appender.appendBatch(a, progressEvents("a", 1, 3));
    await waitFor(() => follower.seen.length === 5);
    expect(seqsOf(follower.seen)).to.deep.equal([1, 2, 3, 4, 5]);

    await appender.appendBatch(a, [event("turn_terminal", "end")], { terminal: true });
    await follower.done;
    expectExactlyTheLog(follower.seen, await turnLog(s, a.turnId));
  });

  it("does not trust a live message beyond a gap nor a stale one: yields the true log once", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    const appender = fx.appender();
    await appender.appendBatch(a, progressEvents("a", 2), { newSession: true });
    const follower = follow(s, a.turnId);
    await waitFor(() => follower.seen.length === 2);

    const channel = fx.keys.sessionLive(s);
    // Event 3 is in the log; its message starts with a stale, altered repeat of seq 2. The stale
    // line is dropped and 3 continues the cursor: it is yielded without reading the log.
    const real3 = handEnvelope(s, 3, a.turnId, "progress", { real: true });
    await fx.redis.xadd(fx.keys.sessionEvents(s), "3-0", "e", real3);
    await fx.redis.set(fx.keys.sessionSeq(s), 3);
    let readsBefore = log.reads;
    const stale2 = handEnvelope(s, 2, a.turnId, "progress", { fake: "stale" });
    await fx.redis.publish(channel, `${stale2}\n${real3}`);
    await waitFor(() => follower.seen.length === 3);
    expect(follower.seen[2]?.envelope).to.equal(real3);
    expect(log.reads, "no log read for a message that continues the cursor").to.equal(readsBefore);

    // A bogus seq 5 (not in the log): it leaves a gap, so the follower reads the log instead.
    readsBefore = log.reads;
    await fx.redis.publish(channel, handEnvelope(s, 5, a.turnId, "progress", { fake: "gap" }));
    await waitFor(() => log.reads > readsBefore);
    expect(follower.seen).to.have.length(3);

    await appender.appendBatch(a, progressEvents("a", 2, 2)); // 4, 5
    await appender.appendBatch(a, [event("turn_terminal", "end")], { terminal: true }); // 6
    await follower.done;
    expectExactlyTheLog(follower.seen, await turnLog(s, a.turnId));
    expect(follower.seen.map((e) => e.envelope).join("\n")).not.to.include("fake");
  });

  it("stops when the signal aborts, also while idle", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    await fx.appender().appendBatch(a, progressEvents("a", 2), { newSession: true });
    const follower = follow(s, a.turnId);
    await waitFor(() => follower.seen.length === 2);
    await sleep(20); // let it settle into the idle wait
    expect(hub.readerCount).to.equal(1);
    follower.abort();
    await follower.done;
    expect(seqsOf(follower.seen)).to.deep.equal([1, 2]);
  });

  it("yields nothing when the signal is already aborted", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    await fx.appender().appendBatch(a, progressEvents("a", 2), { newSession: true });
    const controller = new AbortController();
    controller.abort();
    const seen: LogEvent[][] = [];
    for await (const batch of followTurn(log, hub, {
      sessionId: s,
      turnId: a.turnId,
      after: 0,
      signal: controller.signal,
      idlePollMs: NO_POLL_MS,
      endedBy: async () => false,
    })) {
      seen.push(batch);
    }
    expect(seen).to.deep.equal([]);
  });

  it("consults endedBy when idle and ends when it says the turn ended at the cursor", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    await fx.appender().appendBatch(a, progressEvents("a", 3), { newSession: true });
    let polls = 0;
    const follower = follow(s, a.turnId, {
      idlePollMs: 10,
      endedBy: async () => ++polls >= 3,
    });
    await follower.done;
    expect(seqsOf(follower.seen)).to.deep.equal([1, 2, 3]);
    expect(follower.endedByCalls).to.deep.equal([3, 3, 3]);
  });

  it("finds an event whose live message was lost on the idle poll", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    await fx.appender().appendBatch(a, progressEvents("a", 3), { newSession: true });
    const follower = follow(s, a.turnId, {
      idlePollMs: 10,
      endedBy: async (cursor) => cursor >= 4,
    });
    await waitFor(() => follower.seen.length === 3);
    // In the log, never announced.
    await fx.redis.xadd(fx.keys.sessionEvents(s), "4-0", "e", handEnvelope(s, 4, a.turnId));
    await follower.done;
    expect(seqsOf(follower.seen)).to.deep.equal([1, 2, 3, 4]);
    expect(follower.endedByCalls.at(-1)).to.equal(4);
  });

  it("yields a continuation that arrived during an empty read without waiting for the idle poll", async () => {
    const s = fx.id("s");
    const a = target(s, "A");
    const appender = fx.appender();
    await appender.appendBatch(a, progressEvents("a", 2), { newSession: true });
    log.duringRead = async () => {
      const delivered = new Promise<void>((resolve) => {
        const off = hub.subscribe(s, () => {
          off();
          resolve();
        });
      });
      await appender.appendBatch(a, [event("turn_terminal", "end")], { terminal: true }); // 3
      await delivered; // the follower's listener (subscribed earlier) has it in its inbox now
    };
    const follower = follow(s, a.turnId, { after: 2, idlePollMs: 300 });
    await follower.done;
    expect(seqsOf(follower.seen)).to.deep.equal([3]);
    expect(follower.endedByCalls, "yielded without falling back to the idle poll").to.deep.equal(
      [],
    );
  });
});
