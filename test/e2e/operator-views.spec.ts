/**
 * The operator views over real HTTP, Redis and the simulator: `GET /v1/admin/monitor` lists a
 * streaming turn with its model, time to first token, token speeds and trace, shows the tool a
 * turn runs, forgets turns once they end and ignores entries a dead worker left behind; Bull Board
 * serves its page, assets and (read-only) API under /admin/queues. Both sit behind the admin guard.
 */
import http from "node:http";
import { expect } from "chai";
import {
  type MonitoredTurn,
  type TurnMonitorView,
  TurnMonitorViewSchema,
} from "../../src/contract/admin.js";
import { ErrorEnvelopeSchema } from "../../src/contract/errors.js";
import {
  type Accepted,
  cancelTurns,
  type ErrorBody,
  http as request,
  submit,
  waitForTurn,
  waitUntil,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

async function monitor(farm: TestFarm): Promise<TurnMonitorView> {
  const reply = await request<TurnMonitorView>(farm.url, "GET", "/v1/admin/monitor");
  expect(reply.status, JSON.stringify(reply.body)).to.equal(200);
  const parsed = TurnMonitorViewSchema.safeParse(reply.body);
  expect(parsed.success, JSON.stringify(parsed.error?.issues)).to.equal(true);
  return reply.body;
}

/** Polls the monitor until the turn's entry satisfies `check`; returns that entry. */
async function monitoredUntil(
  farm: TestFarm,
  turnId: string,
  check: (turn: MonitoredTurn) => boolean,
): Promise<MonitoredTurn> {
  let found: MonitoredTurn | undefined;
  await waitUntil(`monitor entry of ${turnId}`, async () => {
    found = (await monitor(farm)).turns.find((t) => t.turn_id === turnId && check(t));
    return found !== undefined;
  });
  return found as MonitoredTurn;
}

/** GET from another local address, which the admin guard does not treat as local. */
function getFrom(base: string, path: string): Promise<{ status: number; body: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: url.hostname, port: url.port, path: url.pathname, localAddress: "127.0.0.2" },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
  });
}

describe("operator views: the turn monitor and Bull Board (end to end)", () => {
  let farm: TestFarm;
  const submitted: Accepted[] = [];

  before(async () => {
    farm = await TestFarm.start();
  });
  after(async () => {
    if (!farm) return;
    await cancelTurns(
      farm.url,
      submitted.map((t) => t.turn_id),
    );
    await farm.stop();
  });

  it("lists a streaming turn with model, time to first token, speeds and trace; drops it when it ends", async () => {
    const turn = await submit(
      farm.url,
      { input: "[[sim ttft_ms=150 token_delay_ms=20 reply_tokens=2000]] stream slowly" },
      { traceparent: TRACEPARENT },
    );
    submitted.push(turn);
    const entry = await monitoredUntil(
      farm,
      turn.turn_id,
      (t) => t.stage === "streaming" && (t.output_tokens_per_s.last_call ?? 0) > 0,
    );
    expect(entry).to.include({
      session_id: turn.session_id,
      kind: "agent",
      model: "sim",
      attempt: 1,
      trace_id: TRACE_ID,
      round: 1,
    });
    expect(entry.ttft_ms).to.be.a("number").and.at.least(100);
    // 20 ms a token: about 50 tokens/s (the simulator's pacing and timers blur it a little).
    expect(entry.output_tokens_per_s.last_call).to.be.within(10, 200);
    expect(entry.output_tokens_per_s.turn).to.be.within(10, 200);
    expect(entry.output_tokens).to.be.greaterThan(0);
    expect(entry.prompt_tokens).to.be.greaterThan(0);
    expect(entry.tools).to.deep.equal([]);
    expect(entry.elapsed_ms).to.be.at.least(entry.stage_elapsed_ms);
    expect(entry.worker.host).to.be.a("string").and.not.equal("");

    const view = await monitor(farm);
    expect(view.running).to.equal(view.turns.length);
    expect(view.by_stage.streaming).to.be.at.least(1);

    await request(farm.url, "POST", `/v1/turns/${turn.turn_id}/cancel`);
    expect((await waitForTurn(farm.url, turn.turn_id)).status).to.equal("cancelled");
    await waitUntil(
      "the ended turn to leave the monitor",
      async () => !(await monitor(farm)).turns.some((t) => t.turn_id === turn.turn_id),
      2_000,
    );
  });

  it("shows the tool a turn is running, then forgets the finished turn", async () => {
    const turn = await submit(farm.url, {
      input: '[[sim tool=execute_command args={"command":"sleep 1.5"}]] wait a bit',
    });
    submitted.push(turn);
    const entry = await monitoredUntil(farm, turn.turn_id, (t) => t.stage === "tool_calls");
    expect(entry.tools).to.deep.equal(["execute_command"]);
    expect(entry.model_calls).to.equal(1);
    expect((await waitForTurn(farm.url, turn.turn_id)).status).to.equal("completed");
    await waitUntil(
      "the finished turn to leave the monitor",
      async () => !(await monitor(farm)).turns.some((t) => t.turn_id === turn.turn_id),
      2_000,
    );
  });

  it("ignores and prunes what a dead worker left behind", async () => {
    const { keys } = farm.api.context;
    const now = Date.now();
    // Expired by its score (the worker stopped refreshing it), and live by score but without
    // its entry (it expired between refreshes): neither is reported.
    await farm.redis.zadd(keys.monitorIndex, now - 1_000, "dead-turn.1", now + 60_000, "gone.1");
    await farm.redis.set(keys.monitorEntry("dead-turn.1"), JSON.stringify({ turn_id: "x" }));
    const view = await monitor(farm);
    expect(view.turns.map((t) => t.turn_id)).to.not.include.members(["dead-turn", "gone", "x"]);
    expect(await farm.redis.zscore(keys.monitorIndex, "dead-turn.1")).to.equal(null);
  });

  it("serves Bull Board's page, assets and read-only API under /admin/queues", async () => {
    const page = await fetch(`${farm.url}/admin/queues`);
    expect(page.status).to.equal(200);
    expect(page.headers.get("content-type")).to.match(/^text\/html/);
    const html = await page.text();
    // Assets are linked relative to <base href>, which must be the mount path.
    expect(html).to.include('<base href="/admin/queues/" />');
    const asset = /src="(static\/js\/[^"]+)"/.exec(html)?.[1];
    expect(asset, "a script of the page").to.be.a("string");
    const script = await fetch(`${farm.url}/admin/queues/${asset}`);
    expect(script.status).to.equal(200);
    expect(script.headers.get("content-type")).to.match(/javascript/);
    // The UI's client-side routes render the same page.
    expect((await fetch(`${farm.url}/admin/queues/queue/turns`)).status).to.equal(200);

    const api = await request<{ queues: { name: string; readOnlyMode: boolean }[] }>(
      farm.url,
      "GET",
      "/admin/queues/api/queues",
    );
    expect(api.status).to.equal(200);
    expect(api.body.queues.map((q) => [q.name, q.readOnlyMode])).to.deep.equal([["turns", true]]);
    const pause = await request(farm.url, "PUT", "/admin/queues/api/queues/turns/pause");
    expect(pause.status).to.equal(405);

    // What Bull Board does not know still gets the API's JSON 404.
    const unknown = await request<ErrorBody>(farm.url, "GET", "/admin/queues/no/such/page");
    expect(unknown.status).to.equal(404);
    expect(ErrorEnvelopeSchema.safeParse(unknown.body).success).to.equal(true);
    expect(unknown.body.error.code).to.equal("route_not_found");
  });

  it("refuses both views to a client that is not local when no token is set (403)", async () => {
    for (const path of ["/v1/admin/monitor", "/admin/queues", "/admin/queues/api/queues"]) {
      const reply = await getFrom(farm.url, path);
      expect(reply.status, path).to.equal(403);
      const body = JSON.parse(reply.body) as ErrorBody;
      expect(ErrorEnvelopeSchema.safeParse(body).success, path).to.equal(true);
      expect(body.error.code, path).to.equal("forbidden");
    }
  });
});

describe("operator views: admin token (end to end)", () => {
  const token = "admin-token-for-tests-0123";
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ env: { ADMIN_TOKEN: token }, workers: 0 });
  });
  after(async () => {
    await farm?.stop();
  });

  it("wants Authorization: Bearer <ADMIN_TOKEN> for the monitor and Bull Board", async () => {
    const auth = { Authorization: `Bearer ${token}` };
    for (const path of ["/v1/admin/monitor", "/admin/queues", "/admin/queues/api/queues"]) {
      const refused = await request<ErrorBody>(farm.url, "GET", path);
      expect(refused.status, path).to.equal(401);
      expect(refused.body.error.code, path).to.equal("unauthorized");
      expect((await request(farm.url, "GET", path, undefined, auth)).status, path).to.equal(200);
    }
  });
});
