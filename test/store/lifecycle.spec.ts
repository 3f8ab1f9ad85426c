/**
 * The bucket lifecycle end to end on a real store and real files: archive (export, verify, drop),
 * the manifest and checksum, the archived-range error, restore byte for byte, retention rules,
 * and every failure leaving the bucket consistent (events intact or archive intact).
 */
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import { expect } from "chai";
import { UnsupportedSchemaVersionError } from "../../src/events/schema-version.js";
import { createLogger } from "../../src/obs/logger.js";
import { EventsArchivedError } from "../../src/store/errors.js";
import { ArchiveInvalidError, readManifest } from "../../src/store/lifecycle/archive-file.js";
import { BucketArchiver, BucketLifecycleError } from "../../src/store/lifecycle/bucket-archiver.js";
import type { StoredEvent } from "../../src/store/port.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { DAY_MS, MONDAY_MS, seqRange, storedEvent } from "./fixtures.js";

const logger = createLogger("test-lifecycle", "error");
// The failure paths log errors on purpose; the assertions check the outcome.
logger.silent = true;
const MONDAY = "20260105";
const RETENTION_DAYS = 30;
/** Far enough after the test week that Monday–Wednesday are all past retention. */
const LATER = MONDAY_MS + 60 * DAY_MS;

/** Sessions a and b, seqs 1–30 each, over Monday, Tuesday, Wednesday (10 a day). */
function weekEvents(): StoredEvent[] {
  return ["s-a", "s-b"].flatMap((session) =>
    seqRange(1, 30).map((seq) =>
      storedEvent(
        session,
        seq,
        `${session}-t`,
        MONDAY_MS + Math.floor((seq - 1) / 10) * DAY_MS + seq,
      ),
    ),
  );
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (err: unknown) => err,
  );
}

describe("bucket lifecycle (archiver on SQLite)", () => {
  let dir = "";
  let archiveDir = "";
  let store: SqliteStore;
  let archiver: BucketArchiver;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "farm-lifecycle-"));
    archiveDir = path.join(dir, "archive");
    store = SqliteStore.open(path.join(dir, "farm.sqlite"));
    archiver = new BucketArchiver(store, { archiveDir, retentionDays: RETENTION_DAYS }, logger);
    await store.appendEvents(weekEvents());
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("archives a bucket: compressed JSONL + manifest with per-session ranges and checksum", async () => {
    const before = await store.readBucketEvents(MONDAY, null, 1_000);
    const done = await archiver.archive(MONDAY, "test", LATER);
    expect(done).to.include({ status: "archived", events: 0 });

    expect(done.archive?.file).to.match(/^events_20260105\.[0-9a-z-]+\.jsonl\.gz$/);
    const manifest = await readManifest(archiveDir, MONDAY, done.archive?.manifest ?? "");
    expect(manifest).to.include({ bucket: MONDAY, events: 20, file: done.archive?.file });
    expect(manifest.sessions).to.deep.equal([
      { session_id: "s-a", first_seq: 1, last_seq: 10, events: 10 },
      { session_id: "s-b", first_seq: 1, last_seq: 10, events: 10 },
    ]);
    const file = await readFile(path.join(archiveDir, manifest.file));
    expect(createHash("sha256").update(file).digest("hex")).to.equal(manifest.sha256);
    const lines = gunzipSync(file).toString("utf8").trimEnd().split("\n");
    expect(lines.map((l) => JSON.parse(l).envelope)).to.deep.equal(before.map((e) => e.envelope));
    expect(done.archive).to.include({ sha256: manifest.sha256, events: 20 });

    const [audit] = await store.listAudit({ subjectId: MONDAY, limit: 10 });
    expect(audit).to.include({ actor: "test", action: "bucket.archive", subjectType: "bucket" });
    expect(audit?.details).to.include({ events: 20, sessions: 2, sha256: manifest.sha256 });
  });

  it("answers reads of the archived range with the documented error, the rest normally", async () => {
    await archiver.archive(MONDAY, "test", LATER);
    const err = await failure(store.readEvents("s-a", 0, 100));
    expect(err).to.be.instanceOf(EventsArchivedError);
    expect((err as EventsArchivedError).ranges).to.deep.equal([
      { bucket: MONDAY, firstSeq: 1, lastSeq: 10 },
    ]);
    expect((await store.readEvents("s-a", 10, 100)).map((e) => e.seq)).to.deep.equal(
      seqRange(11, 30),
    );
  });

  it("restores byte for byte, and keeps a restored bucket for one more retention period", async () => {
    const before = await store.readEvents("s-b", 0, 100);
    await archiver.archive(MONDAY, "test", LATER);
    const restored = await archiver.restore(MONDAY, "test", LATER + 1);
    expect(restored).to.include({ status: "active", events: 20, restoredAt: LATER + 1 });
    expect(await store.readEvents("s-b", 0, 100)).to.deep.equal(before);

    // Tuesday and Wednesday are due; restored Monday is not, until retention passes again.
    expect(await archiver.archiveDue(LATER + 2)).to.deep.equal(["20260106", "20260107"]);
    expect((await store.getBucket(MONDAY))?.status).to.equal("active");
    expect(await archiver.archiveDue(LATER + 1 + RETENTION_DAYS * DAY_MS)).to.deep.equal([MONDAY]);
    const actions = (await store.listAudit({ limit: 10 })).map((a) => `${a.action} ${a.subjectId}`);
    expect(actions).to.deep.equal([
      `bucket.archive ${MONDAY}`,
      `bucket.restore ${MONDAY}`,
      "bucket.archive 20260106",
      "bucket.archive 20260107",
      `bucket.archive ${MONDAY}`,
    ]);
  });

  it("refuses a restore from a corrupted archive and leaves the bucket archived", async () => {
    const archived = await archiver.archive(MONDAY, "test", LATER);
    const file = path.join(archiveDir, archived.archive?.file ?? "");
    const bytes = await readFile(file);
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0xff;
    await writeFile(file, bytes);

    const err = await failure(archiver.restore(MONDAY, "test", LATER + 1));
    expect(err).to.be.instanceOf(ArchiveInvalidError);
    expect((err as Error).message).to.match(/sha256/);
    expect((await store.getBucket(MONDAY))?.status).to.equal("archived");
    expect(await failure(store.readEvents("s-a", 0, 5))).to.be.instanceOf(EventsArchivedError);
  });

  it("keeps the events when the export cannot be written, and the bucket active", async () => {
    const blocked = new BucketArchiver(
      store,
      // A file where the archive directory should be: mkdir fails.
      { archiveDir: path.join(dir, "farm.sqlite"), retentionDays: RETENTION_DAYS },
      logger,
    );
    expect(await failure(blocked.archive(MONDAY, "test", LATER))).to.be.instanceOf(Error);
    expect((await store.getBucket(MONDAY))?.status).to.equal("active");
    expect(await store.readEvents("s-a", 0, 100)).to.have.length(30);
    // archiveDue logs and moves on rather than throwing.
    expect(await blocked.archiveDue(LATER)).to.deep.equal([]);
  });

  it("fails cleanly (no hang, no stray file, bucket active) when the export breaks midway", async () => {
    let pages = 0;
    const flaky = new Proxy(store, {
      get(target, prop) {
        if (prop === "readBucketEvents") {
          return async (...args: Parameters<SqliteStore["readBucketEvents"]>) => {
            pages++;
            if (pages > 1) throw new Error("store went away mid-export");
            return target.readBucketEvents(args[0], args[1], 5);
          };
        }
        const value = Reflect.get(target, prop, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const breaking = new BucketArchiver(
      flaky,
      { archiveDir, retentionDays: RETENTION_DAYS },
      logger,
    );
    const err = await failure(breaking.archive(MONDAY, "test", LATER));
    expect((err as Error).message).to.match(/mid-export/);
    expect((await store.getBucket(MONDAY))?.status).to.equal("active");
    expect(await readdir(archiveDir)).to.deep.equal([]);
    expect(await store.readEvents("s-a", 0, 100)).to.have.length(30);
  });

  it("refuses to archive an open bucket, an unknown one, or one already archived", async () => {
    const open = await failure(archiver.archive(MONDAY, "test", MONDAY_MS + 5));
    expect(open).to.be.instanceOf(BucketLifecycleError).with.property("kind", "conflict");
    expect((await store.getBucket(MONDAY))?.status).to.equal("active");
    const unknown = await failure(archiver.archive("20250101", "test", LATER));
    expect(unknown).to.be.instanceOf(BucketLifecycleError).with.property("kind", "not_found");
    await archiver.archive(MONDAY, "test", LATER);
    const again = await failure(archiver.archive(MONDAY, "test", LATER));
    expect(again).to.be.instanceOf(BucketLifecycleError).with.property("kind", "conflict");
    const notArchived = await failure(archiver.restore("20260106", "test", LATER));
    expect(notArchived).to.be.instanceOf(BucketLifecycleError).with.property("kind", "conflict");
  });

  it("archives nothing with retention 0 (keep forever)", async () => {
    const forever = new BucketArchiver(store, { archiveDir, retentionDays: 0 }, logger);
    expect(await forever.archiveDue(LATER * 2)).to.deep.equal([]);
  });

  it("refuses to restore envelopes of an unknown future schema version", async () => {
    await store.appendEvents([
      {
        ...storedEvent("s-future", 1, "t", MONDAY_MS + 99),
        envelope:
          '{"v":99,"seq":1,"session_id":"s-future","turn_id":"t","type":"progress","ts":1,"data":{}}',
      },
    ]);
    await archiver.archive(MONDAY, "test", LATER);
    const err = await failure(archiver.restore(MONDAY, "test", LATER + 1));
    expect(err).to.be.instanceOf(UnsupportedSchemaVersionError);
    expect((err as Error).message).to.match(/schema version 99; this build reads version 1/);
    expect((await store.getBucket(MONDAY))?.status).to.equal("archived");
  });
});
