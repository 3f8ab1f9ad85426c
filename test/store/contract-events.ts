/**
 * Contract part: the event log — ordering, idempotent appends, paging, maxSeq, and concurrent
 * writers on one store.
 */
import { expect } from "chai";
import type { OpenStore } from "./contract.js";
import { seqRange, storedEvent } from "./fixtures.js";

const SESSION = "session-events";

export function describeEventContract(open: OpenStore): void {
  describe("events", () => {
    it("reads events in ascending seq order whatever order they were appended in", async () => {
      const store = await open();
      const inserted = await store.appendEvents(
        [5, 3, 1, 4, 2].map((s) => storedEvent(SESSION, s)),
      );
      expect(inserted).to.equal(5);
      const read = await store.readEvents(SESSION, 0, 100);
      expect(read.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4, 5]);
    });

    it("keeps every field and the envelope byte for byte", async () => {
      const store = await open();
      const event = storedEvent(SESSION, 1, "turn-7");
      await store.appendEvents([event]);
      const [read] = await store.readEvents(SESSION, 0, 1);
      expect(read).to.deep.equal(event);
    });

    it("ignores duplicates and returns only the number actually inserted", async () => {
      const store = await open();
      expect(await store.appendEvents([])).to.equal(0);
      expect(await store.appendEvents([1, 1, 2].map((s) => storedEvent(SESSION, s)))).to.equal(2);
      expect(await store.appendEvents([2, 3].map((s) => storedEvent(SESSION, s)))).to.equal(1);
      const read = await store.readEvents(SESSION, 0, 100);
      expect(read.map((e) => e.seq)).to.deep.equal([1, 2, 3]);
    });

    it("treats a re-sent batch as already stored: it inserts 0 and the first write wins", async () => {
      const store = await open();
      const batch = seqRange(1, 4).map((s) => storedEvent(SESSION, s));
      expect(await store.appendEvents(batch)).to.equal(4);
      const altered = batch.map((e) => ({ ...e, type: "error", envelope: "{}" }));
      expect(await store.appendEvents(altered)).to.equal(0);
      expect(await store.readEvents(SESSION, 0, 100)).to.deep.equal(batch);
    });

    it("keeps sessions apart: the same seq in two sessions is two events", async () => {
      const store = await open();
      expect(await store.appendEvents([storedEvent("s-1", 1), storedEvent("s-2", 1)])).to.equal(2);
      expect(await store.readEvents("s-1", 0, 10)).to.deep.equal([storedEvent("s-1", 1)]);
      expect(await store.readEvents("s-2", 0, 10)).to.deep.equal([storedEvent("s-2", 1)]);
    });

    it("pages with afterSeq (exclusive) and limit", async () => {
      const store = await open();
      await store.appendEvents(seqRange(1, 10).map((s) => storedEvent(SESSION, s)));
      const seqs = async (after: number, limit: number) =>
        (await store.readEvents(SESSION, after, limit)).map((e) => e.seq);
      expect(await seqs(0, 4)).to.deep.equal([1, 2, 3, 4]);
      expect(await seqs(4, 4)).to.deep.equal([5, 6, 7, 8]);
      expect(await seqs(8, 4)).to.deep.equal([9, 10]);
      expect(await seqs(10, 4)).to.deep.equal([]);
      expect(await store.readEvents("unknown-session", 0, 4)).to.deep.equal([]);
    });

    it("reports maxSeq per session, 0 when it has no events", async () => {
      const store = await open();
      expect(await store.maxSeq(SESSION)).to.equal(0);
      await store.appendEvents([storedEvent(SESSION, 2), storedEvent(SESSION, 7)]);
      await store.appendEvents([storedEvent("other", 40)]);
      expect(await store.maxSeq(SESSION)).to.equal(7);
      expect(await store.maxSeq("other")).to.equal(40);
    });

    it("never loses or duplicates events when two handles append interleaved batches", async () => {
      const [first, second] = [await open(), await open()];
      const total = 400;
      const batchSize = 10;
      const batches = seqRange(0, total / batchSize - 1).map((b) =>
        seqRange(b * batchSize + 1, (b + 1) * batchSize).map((s) => storedEvent(SESSION, s)),
      );
      // Each handle takes every other batch and re-sends the batch its peer owns just before,
      // as a persister retrying after a lost acknowledgement would.
      const writes = batches.flatMap((batch, i) => {
        const writer = i % 2 === 0 ? first : second;
        const resend = batches[i - 1];
        return resend === undefined
          ? [writer.appendEvents(batch)]
          : [writer.appendEvents(batch), writer.appendEvents(resend)];
      });
      const counts = await Promise.all(writes);

      expect(counts.reduce((sum, n) => sum + n, 0)).to.equal(total);
      const read = await first.readEvents(SESSION, 0, total + 10);
      expect(read.map((e) => e.seq)).to.deep.equal(seqRange(1, total));
      expect(await second.maxSeq(SESSION)).to.equal(total);
    });
  });
}
