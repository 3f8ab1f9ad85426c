import { expect } from "chai";
import { FaultSwitch, parseFaultRule } from "../../src/sim/fault-switch.js";
import type { SimServer } from "../../src/sim/server.js";
import { client, errorBody, postChat, startSim, user } from "./helpers.js";

const REQUESTS = 40;

/** Statuses of REQUESTS chat calls to a fresh simulator, after setting `rule` on its switch. */
async function statusesOf(
  options: Parameters<typeof startSim>[0],
  rule?: unknown,
): Promise<number[]> {
  const sim = await startSim(options);
  try {
    if (rule) {
      await fetch(sim.url.replace(/\/v1$/, "/sim/faults"), {
        method: "POST",
        body: JSON.stringify(rule),
      });
    }
    const out: number[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const res = await postChat(sim, { model: "m", messages: [user(`q${i}`)] });
      await res.arrayBuffer();
      out.push(res.status);
    }
    return out;
  } finally {
    await sim.close();
  }
}

describe("sim runtime fault switch (/sim/faults)", () => {
  let sim: SimServer;
  const faultsUrl = () => sim.url.replace(/\/v1$/, "/sim/faults");
  const setFault = (body: unknown) =>
    fetch(faultsUrl(), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const statusOf = async (model: string, text = "hello") => {
    const res = await postChat(sim, { model, messages: [user(text)] });
    await res.arrayBuffer();
    return { status: res.status, retryAfter: res.headers.get("retry-after") };
  };

  beforeEach(async () => {
    sim = await startSim();
  });
  afterEach(() => sim.close());

  it("rate-limits only the switched model until the rule is cleared", async () => {
    const set = await setFault({ model: "sim-a", rate429: 1, retryAfterS: 7 });
    expect(set.status).to.equal(200);
    expect(await set.json()).to.deep.equal({
      faults: [{ model: "sim-a", rate429: 1, retryAfterS: 7 }],
    });

    const limited = await postChat(sim, { model: "sim-a", messages: [user("hi")] });
    expect(limited.status).to.equal(429);
    expect(limited.headers.get("retry-after")).to.equal("7");
    expect((await errorBody(limited)).error.code).to.equal("rate_limit_exceeded");
    // The openai client sees the provider's own error type.
    const error = await client(sim)
      .chat.completions.create({ model: "sim-a", messages: [user("hi")] })
      .catch((err: unknown) => err);
    expect(error).to.have.property("status", 429);
    expect(await statusOf("sim-b")).to.deep.equal({ status: 200, retryAfter: null });

    const cleared = await fetch(`${faultsUrl()}?model=sim-a`, { method: "DELETE" });
    expect(await cleared.json()).to.deep.equal({ faults: [] });
    expect((await statusOf("sim-a")).status).to.equal(200);
  });

  it('"*" matches every model, an exact rule wins over it, rate 0 removes a rule', async () => {
    await setFault({ model: "*", rate429: 1 });
    await setFault({ model: "sim-b", rate429: 1, retryAfterS: 3 });
    expect(await statusOf("sim-a")).to.deep.equal({ status: 429, retryAfter: "1" });
    expect(await statusOf("sim-b")).to.deep.equal({ status: 429, retryAfter: "3" });

    const list = await (await fetch(faultsUrl())).json();
    expect(list).to.deep.equal({
      faults: [
        { model: "*", rate429: 1, retryAfterS: 1 },
        { model: "sim-b", rate429: 1, retryAfterS: 3 },
      ],
    });
    await setFault({ model: "*", rate429: 0 });
    expect((await statusOf("sim-a")).status).to.equal(200);
    expect((await statusOf("sim-b")).status).to.equal(429);
    await fetch(faultsUrl(), { method: "DELETE" });
    expect((await statusOf("sim-b")).status).to.equal(200);
  });

  it("a fractional rate fails about that share, reproducibly for the same seed", async () => {
    const run = () => statusesOf({ seed: 7 }, { model: "m", rate429: 0.5 });
    const first = await run();
    expect(await run()).to.deep.equal(first);
    const limited = first.filter((s) => s === 429).length;
    expect(limited).to.be.within(10, 30);
    expect(first.filter((s) => s !== 429 && s !== 200)).to.deep.equal([]);
  });

  it("a directive's fault still wins over the switch", async () => {
    await setFault({ model: "m", rate429: 1, retryAfterS: 9 });
    const res = await postChat(sim, { model: "m", messages: [user("x [[sim fault=500]]")] });
    expect(res.status).to.equal(500);
    const limited = await postChat(sim, {
      model: "m",
      messages: [user("y [[sim fault=429 retry_after_s=2]]")],
    });
    expect(limited.headers.get("retry-after")).to.equal("2");
  });

  it("refuses invalid rules with 400 in OpenAI's error shape and keeps the old rules", async () => {
    await setFault({ model: "m", rate429: 1 });
    const bad: [unknown, string | null][] = [
      ["{not json", null],
      [[1], null],
      [{ rate429: 1 }, "model"],
      [{ model: "", rate429: 1 }, "model"],
      [{ model: "m", rate429: 1.5 }, "rate429"],
      [{ model: "m", rate429: "1" }, "rate429"],
      [{ model: "m", rate429: 1, retryAfterS: 1.5 }, "retryAfterS"],
      [{ model: "m", rate429: 1, retryAfterS: -1 }, "retryAfterS"],
      [{ model: "m", rate429: 1, rate500: 1 }, "rate500"],
    ];
    for (const [body, param] of bad) {
      const res = await setFault(body);
      expect(res.status, JSON.stringify(body)).to.equal(400);
      const { error } = await errorBody(res);
      expect(error.type).to.equal("invalid_request_error");
      expect(error.param, JSON.stringify(body)).to.equal(param);
    }
    const list = await (await fetch(faultsUrl())).json();
    expect(list).to.deep.equal({ faults: [{ model: "m", rate429: 1, retryAfterS: 1 }] });
    const wrongMethod = await fetch(faultsUrl(), { method: "PUT", body: "{}" });
    expect(wrongMethod.status).to.equal(404);
  });

  it("never shifts the configured-rate faults: those requests fail as without the switch", async () => {
    const statuses = (rule?: unknown) => statusesOf({ faultRate500: 0.3, seed: 5 }, rule);
    const without = await statuses();
    const withSwitch = await statuses({ model: "m", rate429: 0.5 });
    expect(without).to.include(500);
    withSwitch.forEach((status, i) => {
      expect(status, `request ${i}`).to.be.oneOf(without[i] === 500 ? [500] : [200, 429]);
    });
    expect(withSwitch).to.include(429);
  });

  it("parses a rule with the default Retry-After, and draws only for matched models", () => {
    expect(parseFaultRule('{"model":"x","rate429":0.25}', 4)).to.deep.equal({
      model: "x",
      rate429: 0.25,
      retryAfterS: 4,
    });
    const a = new FaultSwitch(1);
    const b = new FaultSwitch(1);
    a.set({ model: "x", rate429: 0.5, retryAfterS: 1 });
    b.set({ model: "x", rate429: 0.5, retryAfterS: 1 });
    const draws = (s: FaultSwitch) => Array.from({ length: 20 }, () => s.pick429("x"));
    expect(draws(a)).to.deep.equal(draws(b));
    for (let i = 0; i < 5; i++) expect(b.pick429("y")).to.equal(undefined);
    expect(draws(a)).to.deep.equal(draws(b));
  });
});
