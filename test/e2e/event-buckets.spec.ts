/**
 * The event buckets over real HTTP: turns land in today's bucket; an operator lists buckets,
 * archives a closed one and restores it; reading an archived range answers 410 events_archived
 * with the ranges and where to resume, then reads work again after the restore, byte for byte.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { expect } from "chai";
import { BucketListSchema, BucketViewSchema } from "../../src/contract/buckets.js";
import { ErrorEnvelopeSchema } from "../../src/contract/errors.js";
import { bucketOf } from "../../src/store/buckets.js";
import { http, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const OLD_DAY = "20260105";
const OLD_DAY_MS = Date.UTC(2026, 0, 5, 12);
const OLD_SESSION = "old-session";

describe("e2e: event buckets, archive and restore over HTTP", function () {
  this.timeout(60_000);
  let farm: TestFarm;
  let base = "";

  before(async () => {
    farm = await TestFarm.start({ workers: 1 });
    base = farm.api.url;
    // A session whose events were written on an old day (as if the farm had run back then).
    const store = farm.api.context.store;
    await store.createTurn(
      {
        id: "old-turn",
        sessionId: OLD_SESSION,
        userId: "old-user",
        input: "hello",
        model: "sim",
        tools: [],
        metadata: null,
        createdAt: OLD_DAY_MS,
      },
      null,
    );
    await store.appendEvents(
      Array.from({ length: 10 }, (_, i) => {
        const seq = i + 1;
        const ts = OLD_DAY_MS + seq;
        return {
          sessionId: OLD_SESSION,
          seq,
          turnId: "old-turn",
          type: "progress",
          ts,
          envelope: JSON.stringify({
            v: 1,
            seq,
            session_id: OLD_SESSION,
            turn_id: "old-turn",
            user_id: "old-user",
            type: "progress",
            ts,
            data: { i },
          }),
        };
      }),
    );
  });
  after(async () => {
    await farm?.stop();
  });

  it("lists today's bucket with the events of a finished turn", async () => {
    const accepted = await submit(base, { input: "hi", user_id: "bucket-user" });
    await waitForTurn(base, accepted.turn_id);
    const today = bucketOf(Date.now(), "day");
    let list = BucketListSchema.parse((await http(base, "GET", "/v1/admin/buckets")).body);
    for (let i = 0; i < 100 && !list.buckets.some((b) => b.name === today && b.events > 0); i++) {
      await new Promise((r) => setTimeout(r, 50));
      list = BucketListSchema.parse((await http(base, "GET", "/v1/admin/buckets")).body);
    }
    expect(list.retention_days).to.equal(30);
    const bucket = list.buckets.find((b) => b.name === today);
    expect(bucket).to.include({ status: "active" });
    expect(bucket?.events).to.be.greaterThan(0);
    expect(Date.parse(bucket?.archive_due_at ?? "")).to.equal(
      Date.parse(bucket?.end ?? "") + 30 * 86_400_000,
    );
    expect(list.buckets.map((b) => b.name)).to.include(OLD_DAY);
  });

  it("archives a closed bucket, answers 410 for its range, and restores it", async () => {
    const before = await http<{ events: unknown[] }>(
      base,
      "GET",
      `/v1/sessions/${OLD_SESSION}/events`,
    );
    expect(before.status).to.equal(200);
    expect(before.body.events).to.have.length(10);

    const archived = await http(base, "POST", `/v1/admin/buckets/${OLD_DAY}/archive`);
    expect(archived.status, JSON.stringify(archived.body)).to.equal(200);
    const view = BucketViewSchema.parse(archived.body);
    expect(view).to.include({ status: "archived", events: 0 });
    expect(view.archive?.events).to.equal(10);
    const archiveDir = path.join(farm.config.dataDir, "archive");
    expect(existsSync(path.join(archiveDir, view.archive?.file ?? "-"))).to.equal(true);
    expect(existsSync(path.join(archiveDir, view.archive?.manifest ?? "-"))).to.equal(true);

    const gone = await http(base, "GET", `/v1/sessions/${OLD_SESSION}/events?after=3`);
    expect(gone.status).to.equal(410);
    const envelope = ErrorEnvelopeSchema.parse(gone.body);
    expect(envelope.error).to.include({ code: "events_archived", retryable: false });
    expect(envelope.error.message).to.match(/archived/);
    expect(envelope.error.details).to.deep.equal({
      session_id: OLD_SESSION,
      ranges: [{ bucket: OLD_DAY, first_seq: 4, last_seq: 10 }],
      resume_after: 10,
    });

    const restored = await http(base, "POST", `/v1/admin/buckets/${OLD_DAY}/restore`);
    expect(restored.status, JSON.stringify(restored.body)).to.equal(200);
    expect(BucketViewSchema.parse(restored.body)).to.include({ status: "active", events: 10 });
    const after = await http(base, "GET", `/v1/sessions/${OLD_SESSION}/events`);
    expect(after.body).to.deep.equal(before.body);
  });

  it("answers bad, unknown and not-allowed bucket operations with clear errors", async () => {
    const today = bucketOf(Date.now(), "day");
    const cases: [string, number, string][] = [
      [`/v1/admin/buckets/${today}/archive`, 409, "bucket_conflict"],
      [`/v1/admin/buckets/${OLD_DAY}/restore`, 409, "bucket_conflict"],
      ["/v1/admin/buckets/20250101/archive", 404, "not_found"],
      ["/v1/admin/buckets/20261399/archive", 400, "invalid_request"],
      ["/v1/admin/buckets/events;drop/archive", 400, "invalid_request"],
    ];
    for (const [url, status, code] of cases) {
      const reply = await http(base, "POST", url);
      expect(reply.status, url).to.equal(status);
      expect(ErrorEnvelopeSchema.parse(reply.body).error.code, url).to.equal(code);
    }
    const audit = await farm.api.context.store.listAudit({ subjectId: OLD_DAY, limit: 10 });
    expect(audit.map((a) => `${a.actor} ${a.action}`)).to.deep.equal([
      "admin bucket.archive",
      "admin bucket.restore",
    ]);
  });

  it("exposes the persist backlog gauges", async () => {
    const metrics = await http<string>(base, "GET", "/metrics");
    expect(metrics.body).to.match(/^farm_persist_backlog_entries \d+/m);
    expect(metrics.body).to.match(/^farm_event_persist_lag_seconds [\d.e-]+/m);
    expect(metrics.body).to.match(/^farm_redis_memory_used_ratio [\d.e-]+/m);
  });
});
