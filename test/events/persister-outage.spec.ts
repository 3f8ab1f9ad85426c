/**
 * The persister through a real store outage: another connection holds the SQLite write lock (as
 * a stuck or failed-over store would refuse writes) while events are emitted. Events stay in
 * Redis and stay readable from the hot stream without gaps; the persister logs the failure and
 * the growing backlog, retries with backoff, and once the store is back stores every event
 * exactly once, in order.
 */
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import { expect } from "chai";
import winston from "winston";
import { EventLog } from "../../src/events/event-log.js";
import { EventPersister } from "../../src/events/persister.js";
import { createLogger } from "../../src/obs/logger.js";
import { EventsFixture, eventSettings, progressEvents, target, waitFor } from "./helpers.js";

describe("events: EventPersister during a store outage", function () {
  // The store's busy give-up (5 s) has to pass before the persister sees the outage.
  this.timeout(60_000);
  let fx: EventsFixture;
  let persister: EventPersister | null = null;
  let lock: Database.Database | null = null;

  before(async () => {
    fx = await EventsFixture.open("outage");
  });
  after(async () => {
    lock?.close();
    await persister?.stop();
    await fx.close();
  });

  it("keeps events in Redis, logs the backlog, then catches up in order without duplicates", async () => {
    const lines: { level: string; message: string }[] = [];
    const logger = createLogger("test-outage", "info");
    logger.add(
      new winston.transports.Stream({
        stream: new Writable({
          write(chunk, _enc, done) {
            lines.push(JSON.parse(String(chunk)));
            done();
          },
        }),
      }),
    );
    const keys = fx.freshKeys();
    const s = fx.id("s");
    const appender = fx.appender(eventSettings(), keys);
    // Warn as soon as one entry waits, so the backlog warning shows in this short test.
    persister = new EventPersister(fx.connection(), keys, fx.store, 500, logger, 1);
    await persister.start();

    lock = new Database(fx.storeFile);
    lock.exec("BEGIN EXCLUSIVE");
    await appender.appendBatch(target(s, "t1"), progressEvents("a", 5), { newSession: true });
    for (let i = 1; i < 4; i++) {
      await appender.appendBatch(target(s, "t1"), progressEvents("a", 5, i * 5));
    }

    const log = new EventLog(fx.redis, keys, fx.store);
    const during = await log.read(s, 0, 100);
    expect(during.map((e) => e.seq)).to.deep.equal(range(1, 20));
    expect((await log.read(s, 7, 5)).map((e) => e.seq)).to.deep.equal([8, 9, 10, 11, 12]);

    await waitFor(() => lines.some((l) => l.message === "event persist failed; retrying"), 100);
    expect(await fx.store.maxSeq(s)).to.equal(0);
    expect(persister.stats.eventsPersisted).to.equal(0);
    const warning = lines.find(
      (l) => l.message === "events are piling up in Redis waiting for the store",
    );
    expect(warning, "backlog warning").to.include({ level: "warn" });
    expect(warning).to.have.property("backlog_entries").that.is.at.least(1);

    lock.exec("COMMIT");
    lock.close();
    lock = null;
    await waitFor(async () => (await fx.store.maxSeq(s)) === 20, 100);
    const stored = await fx.store.readEvents(s, 0, 100);
    expect(stored.map((e) => e.seq)).to.deep.equal(range(1, 20));
    expect((await log.read(s, 0, 100)).map((e) => e.envelope)).to.deep.equal(
      stored.map((e) => e.envelope),
    );
  });
});

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
