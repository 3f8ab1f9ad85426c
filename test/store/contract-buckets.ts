/**
 * Contract part: the event log across time buckets — cross-bucket replay, the per-session bucket
 * index, redirected appends, and the bucket lifecycle (archive, archived-range error, restore).
 */
import { expect } from "chai";
import { EventsArchivedError } from "../../src/store/errors.js";
import type { BucketArchive, Store } from "../../src/store/port.js";
import type { OpenStore } from "./contract.js";
import { DAY_MS, MONDAY_MS, seqRange, storedEvent } from "./fixtures.js";

const SESSION = "session-buckets";

/** seqs 1–30 over three days: 1–10 on Monday, 11–20 Tuesday, 21–30 Wednesday. */
async function threeDays(store: Store, session = SESSION): Promise<void> {
  const events = seqRange(1, 30).map((seq) =>
    storedEvent(session, seq, "turn-b", MONDAY_MS + Math.floor((seq - 1) / 10) * DAY_MS + seq),
  );
  // Newest first, so order of arrival cannot be what orders the reads.
  expect(await store.appendEvents(events.reverse())).to.equal(30);
}

const ARCHIVE: BucketArchive = {
  file: "events_20260105.jsonl.gz",
  manifest: "events_20260105.manifest.json",
  sha256: "0".repeat(64),
  events: 10,
  archivedAt: MONDAY_MS + 40 * DAY_MS,
};

async function archiveMonday(store: Store): Promise<void> {
  expect(await store.setBucketStatus("20260105", "active", "archiving", ARCHIVE.archivedAt)).to.not
    .be.null;
  expect((await store.completeArchive("20260105", ARCHIVE))?.status).to.equal("archived");
}

export function describeBucketContract(open: OpenStore): void {
  describe("event buckets", () => {
    it("puts events in the bucket of their timestamp and indexes them per session", async () => {
      const store = await open();
      await threeDays(store);
      expect(await store.listSessionBuckets(SESSION)).to.deep.equal([
        { bucket: "20260105", firstSeq: 1, lastSeq: 10, readable: true },
        { bucket: "20260106", firstSeq: 11, lastSeq: 20, readable: true },
        { bucket: "20260107", firstSeq: 21, lastSeq: 30, readable: true },
      ]);
      const buckets = await store.listBuckets();
      expect(buckets.map((b) => [b.name, b.status, b.events])).to.deep.equal([
        ["20260105", "active", 10],
        ["20260106", "active", 10],
        ["20260107", "active", 10],
      ]);
      expect(buckets[0]).to.include({ startMs: MONDAY_MS, endMs: MONDAY_MS + DAY_MS });
    });

    it("replays across buckets in seq order from any seq, page by page", async () => {
      const store = await open();
      await threeDays(store);
      const seqs = async (after: number, limit: number) =>
        (await store.readEvents(SESSION, after, limit)).map((e) => e.seq);
      expect(await seqs(0, 100)).to.deep.equal(seqRange(1, 30));
      expect(await seqs(8, 5)).to.deep.equal([9, 10, 11, 12, 13]);
      expect(await seqs(15, 100)).to.deep.equal(seqRange(16, 30));
      expect(await seqs(29, 10)).to.deep.equal([30]);
      expect(await store.maxSeq(SESSION)).to.equal(30);
    });

    it("merges buckets whose seq ranges overlap (clock skew between writers)", async () => {
      const store = await open();
      // seq 3 carries an earlier timestamp than seq 2, as if written by a worker running behind.
      await store.appendEvents([
        storedEvent(SESSION, 1, "t", MONDAY_MS + 10),
        storedEvent(SESSION, 2, "t", MONDAY_MS + DAY_MS + 10),
        storedEvent(SESSION, 3, "t", MONDAY_MS + 20),
        storedEvent(SESSION, 4, "t", MONDAY_MS + DAY_MS + 20),
      ]);
      const read = await store.readEvents(SESSION, 0, 10);
      expect(read.map((e) => e.seq)).to.deep.equal([1, 2, 3, 4]);
      expect((await store.readEvents(SESSION, 1, 2)).map((e) => e.seq)).to.deep.equal([2, 3]);
    });

    it("moves a bucket only from the status it is in (compare-and-set)", async () => {
      const [a, b] = [await open(), await open()];
      await threeDays(a);
      const wins = await Promise.all([
        a.setBucketStatus("20260105", "active", "archiving", 1),
        b.setBucketStatus("20260105", "active", "archiving", 1),
      ]);
      expect(wins.filter((w) => w !== null)).to.have.length(1);
      expect(await a.setBucketStatus("20260105", "active", "archived", 2)).to.equal(null);
      expect(await a.setBucketStatus("nope", "active", "archiving", 2)).to.equal(null);
      expect((await b.getBucket("20260105"))?.status).to.equal("archiving");
    });

    it("exports a bucket in (session, seq) order with a cursor", async () => {
      const store = await open();
      await threeDays(store, "s-b");
      await threeDays(store, "s-a");
      const page1 = await store.readBucketEvents("20260105", null, 12);
      expect(page1.map((e) => `${e.sessionId}:${e.seq}`)).to.deep.equal([
        ...seqRange(1, 10).map((s) => `s-a:${s}`),
        "s-b:1",
        "s-b:2",
      ]);
      const last = page1.at(-1);
      const page2 = await store.readBucketEvents(
        "20260105",
        { sessionId: last?.sessionId ?? "", seq: last?.seq ?? 0 },
        100,
      );
      expect(page2.map((e) => e.seq)).to.deep.equal(seqRange(3, 10));
    });

    it("answers a read that needs an archived bucket with EventsArchivedError, not fewer events", async () => {
      const store = await open();
      await threeDays(store);
      await archiveMonday(store);

      const error = await store.readEvents(SESSION, 0, 100).then(
        () => null,
        (err: unknown) => err,
      );
      expect(error).to.be.instanceOf(EventsArchivedError);
      expect((error as EventsArchivedError).ranges).to.deep.equal([
        { bucket: "20260105", firstSeq: 1, lastSeq: 10 },
      ]);
      expect((error as Error).message).to.match(/archived/);
      // Past the archived range, reads work; the index and maxSeq still know the archived part.
      expect((await store.readEvents(SESSION, 10, 100)).map((e) => e.seq)).to.deep.equal(
        seqRange(11, 30),
      );
      expect(await store.maxSeq(SESSION)).to.equal(30);
      const record = await store.getBucket("20260105");
      expect(record).to.include({ status: "archived", events: 0 });
      expect(record?.archive).to.deep.equal(ARCHIVE);
    });

    it("names only the archived run a read meets first, so resuming after it skips nothing readable", async () => {
      const store = await open();
      await threeDays(store);
      await archiveMonday(store);
      const wednesday = { ...ARCHIVE, file: "w.jsonl.gz", manifest: "w.json", events: 10 };
      await store.setBucketStatus("20260107", "active", "archiving", 1);
      await store.completeArchive("20260107", wednesday);

      const first = await store.readEvents(SESSION, 0, 100).then(
        () => null,
        (err: unknown) => err as EventsArchivedError,
      );
      expect(first?.ranges).to.deep.equal([{ bucket: "20260105", firstSeq: 1, lastSeq: 10 }]);
      expect(first?.resumeAfter).to.equal(10);
      // Tuesday is read in full; the read that reaches Wednesday returns what comes before it,
      // and the next one gets the error.
      const next = await store.readEvents(SESSION, 10, 5);
      expect(next.map((e) => e.seq)).to.deep.equal([11, 12, 13, 14, 15]);
      const rest = await store.readEvents(SESSION, 15, 100);
      expect(rest.map((e) => e.seq)).to.deep.equal([16, 17, 18, 19, 20]);
      const last = await store.readEvents(SESSION, 20, 100).then(
        () => null,
        (err: unknown) => err as EventsArchivedError,
      );
      expect(last?.ranges).to.deep.equal([{ bucket: "20260107", firstSeq: 21, lastSeq: 30 }]);
    });

    it("redirects an append whose bucket is no longer active to the current bucket", async () => {
      const store = await open();
      await threeDays(store);
      await archiveMonday(store);
      // A late event stamped on Monday (a persister catching up after a long outage).
      expect(await store.appendEvents([storedEvent(SESSION, 31, "late", MONDAY_MS + 5)])).to.equal(
        1,
      );
      const [late] = await store.readEvents(SESSION, 30, 10);
      expect(late?.seq).to.equal(31);
      const buckets = await store.listSessionBuckets(SESSION);
      const holder = buckets.find((b) => b.lastSeq === 31);
      expect(holder?.bucket).to.not.equal("20260105");
      expect(holder?.readable).to.equal(true);
    });

    it("restores an archived bucket: restoring is unreadable, then reads are whole again", async () => {
      const store = await open();
      await threeDays(store);
      const monday = await store.readBucketEvents("20260105", null, 100);
      await archiveMonday(store);

      expect(await store.setBucketStatus("20260105", "archived", "restoring", 3)).to.not.equal(
        null,
      );
      expect(await store.restoreEvents("20260105", monday.slice(0, 4))).to.equal(4);
      const midway = await store.readEvents(SESSION, 0, 100).then(
        () => null,
        (err: unknown) => err,
      );
      expect(midway).to.be.instanceOf(EventsArchivedError);
      // Restoring is idempotent like appending: a resumed restore re-sends what it had sent.
      expect(await store.restoreEvents("20260105", monday)).to.equal(6);
      const restored = await store.setBucketStatus("20260105", "restoring", "active", 4);
      expect(restored).to.include({ status: "active", events: 10, restoredAt: 4 });

      const read = await store.readEvents(SESSION, 0, 100);
      expect(read.map((e) => e.seq)).to.deep.equal(seqRange(1, 30));
      expect(read.slice(0, 10)).to.deep.equal(monday);
    });
  });
}
