/**
 * Resuming a turn's event stream after a dropped connection: every event exactly once, whether
 * the reconnect lands in the live tail, in the persisted past, or in the persister's lag.
 */
import { expect } from "chai";
import type { EventEnvelope } from "../../src/events/envelope.js";
import { allTurnEvents, readStream, sleep, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

/** Reads the whole stream in pieces of `piece` frames, reconnecting with Last-Event-ID each time. */
async function readInPieces(base: string, turnId: string, piece: number): Promise<EventEnvelope[]> {
  const seen: EventEnvelope[] = [];
  let lastEventId: number | undefined;
  for (let reconnects = 0; reconnects < 200; reconnects++) {
    const read = await readStream(base, turnId, { lastEventId, maxFrames: piece });
    if (read.status === 204) return seen;
    seen.push(...read.frames.map((f) => f.data));
    if (read.ended) return seen;
    lastEventId = read.frames.at(-1)?.id ?? lastEventId;
  }
  throw new Error("too many reconnects");
}

function expectExactlyOnce(events: EventEnvelope[], reference: EventEnvelope[]): void {
  const seqs = events.map((e) => e.seq);
  expect(new Set(seqs).size, "no duplicates").to.equal(seqs.length);
  expect(events).to.deep.equal(reference);
  expect(events.at(-1)?.type).to.equal("turn_terminal");
}

describe("stream resume (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    // Slow tokens, so reconnects land while the turn is still running.
    farm = await TestFarm.start({ env: { SIM_TOKEN_DELAY_MS: "5", DELTA_FLUSH_MS: "5" } });
  });
  after(async () => {
    await farm.stop();
  });

  for (const piece of [1, 2, 3, 7]) {
    it(`yields every event exactly once when the client drops every ${piece} frame(s)`, async () => {
      const accepted = await submit(farm.url, {
        input: "[[sim reply_tokens=60]] please list the files",
      });
      const pieces = await readInPieces(farm.url, accepted.turn_id, piece);
      await waitForTurn(farm.url, accepted.turn_id);
      expectExactlyOnce(pieces, await allTurnEvents(farm.url, accepted.turn_id));
    });
  }

  it("resumes with ?after= as well as with Last-Event-ID", async () => {
    const accepted = await submit(farm.url, { input: "please list the files" });
    await waitForTurn(farm.url, accepted.turn_id);
    const all = await allTurnEvents(farm.url, accepted.turn_id);
    const middle = all[Math.floor(all.length / 2)] as EventEnvelope;
    const read = await readStream(farm.url, accepted.turn_id, { after: middle.seq });
    expect(read.frames.map((f) => f.data)).to.deep.equal(all.filter((e) => e.seq > middle.seq));
  });

  it("resumes inside the persister's lag: events only in Redis, then the store catches up", async () => {
    await farm.stopPersister();
    try {
      const accepted = await submit(farm.url, {
        input: "[[sim reply_tokens=40]] please list the files",
      });
      const first = await readStream(farm.url, accepted.turn_id, { maxFrames: 4 });
      await waitForTurn(farm.url, accepted.turn_id);
      // Nothing of this turn is in the store yet; the hot stream alone must serve the resume.
      const rest = await readStream(farm.url, accepted.turn_id, {
        lastEventId: first.frames.at(-1)?.id,
      });
      const seen = [...first.frames, ...rest.frames].map((f) => f.data);
      await farm.startPersister();
      await sleep(100);
      expectExactlyOnce(seen, await allTurnEvents(farm.url, accepted.turn_id));
    } finally {
      await farm.startPersister();
    }
  });
});

describe("stream resume across a trimmed hot stream (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ env: { DELTA_FLUSH_MS: "0" } });
  });
  after(async () => {
    await farm.stop();
  });

  it("waits for the persister instead of skipping events that are trimmed and not yet stored", async () => {
    await farm.stopPersister();
    const accepted = await submit(farm.url, {
      input: "[[sim reply_tokens=80]] please list the files",
    });
    await waitForTurn(farm.url, accepted.turn_id);
    // Trim the session's hot stream to its last 3 events: the rest exist only in the persist stream.
    const hot = `${farm.config.redis.prefix}:s:${accepted.session_id}:ev`;
    await farm.redis.xtrim(hot, "MAXLEN", 3);
    const reading = readStream(farm.url, accepted.turn_id);
    await sleep(300);
    await farm.startPersister();
    const read = await reading;
    const seqs = read.frames.map((f) => f.id);
    expect(seqs).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(read.frames.at(-1)?.event).to.equal("turn_terminal");
    expect(seqs.length).to.be.greaterThan(10);
  });
});
