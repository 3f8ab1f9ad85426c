/**
 * What clients and operators see of the fair queue, over real HTTP: `queue_position` of waiting
 * turns follows the round-robin the scheduler then really dispatches in (exact figures, since one
 * worker slot, no prefetch and one running turn per user make it deterministic); running and
 * finished turns show none. `GET /v1/admin/queues` reports counts, ages, the busiest users,
 * workers and the refusals caused here, matching its contract schema; it answers loopback
 * clients without a token, refuses others (403), and with ADMIN_TOKEN set wants the Bearer token.
 */
import http from "node:http";
import { expect } from "chai";
import { type QueueOverview, QueueOverviewSchema } from "../../src/contract/admin.js";
import { ErrorEnvelopeSchema } from "../../src/contract/errors.js";
import {
  type Accepted,
  cancelTurns,
  type ErrorBody,
  http as request,
  SLOW_TURN_INPUT,
  sleep,
  submit,
  type TurnView,
  waitForStatus,
  waitForTurn,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

/**
 * GET from a given local address: 127.0.0.2 is this host, but not an address the admin guard
 * treats as local, so it stands in for a client on another host.
 */
function getFrom(
  localAddress: string,
  base: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: unknown }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: url.hostname, port: url.port, path: url.pathname, localAddress, headers },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
  });
}

const getTurn = async (farm: TestFarm, turnId: string) =>
  (await request<TurnView & { queue_position?: number }>(farm.url, "GET", `/v1/turns/${turnId}`))
    .body;

describe("queue visibility: positions and the admin view (end to end)", () => {
  let farm: TestFarm;
  const heavy: Accepted[] = [];
  const mid: Accepted[] = [];
  let light: Accepted;
  const refusals: Record<string, number> = {};

  const refuse = async (body: Record<string, unknown>, status: number) => {
    const reply = await request<ErrorBody>(farm.url, "POST", "/v1/turns", body);
    expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
    expect(ErrorEnvelopeSchema.safeParse(reply.body).success).to.equal(true);
    const reason = (reply.body.error.details as { reason: string }).reason;
    refusals[reason] = (refusals[reason] ?? 0) + 1;
  };

  // The backlog every test here reads: u-heavy has one slow turn running and 5 waiting, u-mid
  // 3 waiting, u-light 1 waiting; one of each refusal was caused on the way.
  before(async () => {
    farm = await TestFarm.start({
      env: {
        WORKER_CONCURRENCY: "1",
        FAIR_DISPATCH_PREFETCH: "0",
        FAIR_MAX_RUNNING_PER_USER: "1",
        FAIR_MAX_QUEUED_PER_USER: "5",
        FAIR_OVERLOAD_QUEUE_DEPTH: "9",
      },
    });
    heavy.push(await submit(farm.url, { input: SLOW_TURN_INPUT, user_id: "u-heavy" }));
    await waitForStatus(farm.url, heavy[0]?.turn_id ?? "", "running");
    for (let i = 2; i <= 6; i++) {
      heavy.push(await submit(farm.url, { input: `heavy ${i}`, user_id: "u-heavy" }));
    }
    await refuse({ input: "heavy 7", user_id: "u-heavy" }, 429);
    for (let i = 1; i <= 3; i++) {
      mid.push(await submit(farm.url, { input: `mid ${i}`, user_id: "u-mid" }));
    }
    await refuse(
      { input: "mid 4", user_id: "u-mid", session_id: mid[0]?.session_id, on_busy: "reject" },
      409,
    );
    light = await submit(farm.url, { input: "light 1", user_id: "u-light" });
    await refuse({ input: "anyone", user_id: "u-other" }, 503);
  });
  after(async () => {
    if (!farm) return;
    await cancelTurns(
      farm.url,
      [light, ...mid, ...heavy].filter(Boolean).map((t) => t.turn_id),
    );
    await farm.stop();
  });

  it("shows queue_position of waiting turns by round-robin, none for running turns", async () => {
    const running = await getTurn(farm, heavy[0]?.turn_id ?? "");
    expect(running.status).to.equal("running");
    expect(running).to.not.have.property("queue_position");

    const positions = async (turns: Accepted[]) => {
      const views = await Promise.all(turns.map((t) => getTurn(farm, t.turn_id)));
      expect(views.map((v) => v.status)).to.deep.equal(turns.map(() => "queued"));
      return views.map((v) => v.queue_position);
    };
    // u-light is next (ties go to the smaller user id among the ready users); u-mid waits for
    // u-light's one turn; u-heavy's k-th waiting turn (pass 1 + k, it dispatched once) waits for
    // u-light's turn and as many of u-mid's as have a pass before it.
    expect(await positions([light])).to.deep.equal([0]);
    expect(await positions(mid)).to.deep.equal([1, 1, 1]);
    expect(await positions(heavy.slice(1))).to.deep.equal([2, 3, 4, 4, 4]);
  });

  it("GET /v1/admin/queues shows the backlog, workers and refusals (loopback, no token)", async () => {
    const reply = await request<QueueOverview>(farm.url, "GET", "/v1/admin/queues");
    expect(reply.status).to.equal(200);
    const parsed = QueueOverviewSchema.safeParse(reply.body);
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).to.equal(true);
    const view = reply.body;
    expect(view.counts).to.deep.equal({
      waiting: 9,
      dispatched: 0,
      active: 1,
      parked: 0,
      failed_jobs: 0,
    });
    expect(view.oldest_waiting_age_ms).to.be.a("number");
    // The oldest waiting turn is u-heavy's, which cannot run (cap); runnable ones came later.
    expect(view.oldest_runnable_age_ms).to.be.a("number");
    expect(view.oldest_runnable_age_ms as number).to.be.at.most(
      view.oldest_waiting_age_ms as number,
    );
    expect(view.users).to.deep.equal({ with_waiting: 3, with_running: 1, runnable: 2 });
    expect(view.busiest_users).to.deep.equal([
      { user_id: "u-heavy", tier: "default", weight: 1, queued: 5, running: 1 },
      { user_id: "u-mid", tier: "default", weight: 1, queued: 3, running: 0 },
      { user_id: "u-light", tier: "default", weight: 1, queued: 1, running: 0 },
    ]);
    expect(view.workers).to.deep.equal({ live: 1, capacity: 1 });
    expect(refusals).to.deep.equal({
      user_queue_full: 1,
      session_busy: 1,
      overloaded_queue_depth: 1,
    });
    expect(view.rejections).to.deep.equal({ ...refusals, overloaded_wait: 0 });
    expect(view.models).to.be.an("array");
    expect(Date.parse(view.at)).to.be.a("number").and.not.NaN;
  });

  it("refuses the admin view to a client that is not on loopback when no token is set (403)", async () => {
    const reply = await getFrom("127.0.0.2", farm.url, "/v1/admin/queues");
    expect(reply.status).to.equal(403);
    expect(ErrorEnvelopeSchema.safeParse(reply.body).success).to.equal(true);
    expect((reply.body as ErrorBody).error.code).to.equal("forbidden");
    // The same client reaches the public routes: the refusal is the admin guard's.
    expect((await getFrom("127.0.0.2", farm.url, "/healthz")).status).to.equal(200);
    // A request a proxy on this host forwarded is not local either.
    const proxied = await getFrom("127.0.0.1", farm.url, "/v1/admin/queues", {
      "X-Forwarded-For": "203.0.113.7",
    });
    expect(proxied.status).to.equal(403);
  });

  it("dispatches in the round-robin order the positions announced", async () => {
    await request(farm.url, "POST", `/v1/turns/${heavy[0]?.turn_id}/cancel`);
    const [h2, h3, h4, h5, h6] = heavy.slice(1);
    const [m1, m2, m3] = mid;
    const order = [light, m1, h2, m2, h3, m3, h4, h5, h6] as Accepted[];
    const ended: TurnView[] = [];
    for (const turn of order) ended.push(await waitForTurn(farm.url, turn.turn_id));
    expect(ended.map((t) => t.status)).to.deep.equal(order.map(() => "completed"));
    const starts = ended.map((t) => Date.parse((t as { started_at?: string }).started_at ?? ""));
    for (let i = 1; i < starts.length; i++) {
      expect(starts[i], `turn ${i} of the expected order`).to.be.at.least(starts[i - 1] as number);
    }
    // Finished turns carry no position.
    for (const turn of ended) expect(turn).to.not.have.property("queue_position");
    // The last job leaves BullMQ's active list just after its turn is stored as ended.
    let view = (await request<QueueOverview>(farm.url, "GET", "/v1/admin/queues")).body;
    for (let i = 0; i < 200 && (view.counts.active > 0 || view.busiest_users.length > 0); i++) {
      await sleep(10);
      view = (await request<QueueOverview>(farm.url, "GET", "/v1/admin/queues")).body;
    }
    expect(view.counts).to.include({ waiting: 0, dispatched: 0, active: 0 });
    expect(view.busiest_users).to.deep.equal([]);
    expect(view.oldest_waiting_age_ms).to.equal(null);
    expect(view.oldest_runnable_age_ms).to.equal(null);
  });
});

describe("queue visibility: admin token (end to end)", () => {
  const token = "admin-token-for-tests-0123";
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ env: { ADMIN_TOKEN: token } });
  });
  after(async () => {
    await farm?.stop();
  });

  it("wants Authorization: Bearer <ADMIN_TOKEN>, from any client", async () => {
    const attempts: [string, Record<string, string>][] = [
      ["no header", {}],
      ["a wrong token", { Authorization: "Bearer admin-token-for-tests-9999" }],
      ["a wrong token of another length", { Authorization: "Bearer nope" }],
      ["another scheme", { Authorization: `Basic ${token}` }],
      ["the bare token", { Authorization: token }],
    ];
    for (const [what, headers] of attempts) {
      const reply = await request<ErrorBody>(
        farm.url,
        "GET",
        "/v1/admin/queues",
        undefined,
        headers,
      );
      expect(reply.status, what).to.equal(401);
      expect(ErrorEnvelopeSchema.safeParse(reply.body).success, what).to.equal(true);
      expect(reply.body.error.code, what).to.equal("unauthorized");
    }
    const auth = { Authorization: `Bearer ${token}` };
    const ok = await request<QueueOverview>(farm.url, "GET", "/v1/admin/queues", undefined, auth);
    expect(ok.status).to.equal(200);
    expect(QueueOverviewSchema.safeParse(ok.body).success).to.equal(true);
    expect(ok.body.workers.live).to.be.at.least(1);

    // With a token, where the client is does not matter: the token does.
    expect((await getFrom("127.0.0.2", farm.url, "/v1/admin/queues")).status).to.equal(401);
    expect((await getFrom("127.0.0.2", farm.url, "/v1/admin/queues", auth)).status).to.equal(200);
  });
});
