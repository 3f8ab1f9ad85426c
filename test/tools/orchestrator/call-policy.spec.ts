/**
 * ToolCallPolicies (cockatiel): retries only transient failures of idempotent tools, timeouts,
 * the breaker per source (open → fail fast → half-open trial → closed), the bulkhead, and aborts.
 */
import { expect } from "chai";
import {
  type CallPolicySettings,
  ToolCallPolicies,
} from "../../../src/tools/orchestrator/call-policy.js";
import { probe, TRANSIENT } from "./probe-tools.js";

const SETTINGS: CallPolicySettings = {
  maxRetries: 2,
  retryInitialDelayMs: 5,
  retryMaxDelayMs: 20,
  breakerThreshold: 3,
  breakerHalfOpenAfterMs: 200,
  bulkheadConcurrency: 8,
  bulkheadQueue: 8,
};

const never = new AbortController().signal;

describe("tools: call policies", () => {
  it("retries a transient failure of an idempotent tool and reports the attempts", async () => {
    const policies = new ToolCallPolicies(SETTINGS);
    const flaky = probe("flaky", { idempotent: true, script: [TRANSIENT, TRANSIENT] });
    const outcome = await policies.run(flaky.entry, 1_000, never, (s) =>
      flaky.entry.call({}, ctx(s)),
    );
    expect(outcome.output.ok).to.equal(true);
    expect(outcome.attempts).to.equal(3);
    expect(flaky.calls).to.have.length(3);
  });

  it("does not retry a tool that is not idempotent", async () => {
    const policies = new ToolCallPolicies(SETTINGS);
    const once = probe("once", { idempotent: false, script: [TRANSIENT] });
    const outcome = await policies.run(once.entry, 1_000, never, (s) =>
      once.entry.call({}, ctx(s)),
    );
    expect(outcome.output).to.include({ ok: false, error: "503 upstream" });
    expect(outcome.attempts).to.equal(1);
  });

  it("does not retry a business failure (not transient)", async () => {
    const policies = new ToolCallPolicies(SETTINGS);
    const missing = probe("missing", {
      script: [{ ok: false, data: null, error: "no such file" }],
    });
    const outcome = await policies.run(missing.entry, 1_000, never, (s) =>
      missing.entry.call({}, ctx(s)),
    );
    expect(outcome.attempts).to.equal(1);
    expect(outcome.breaker).to.equal("closed");
  });

  it("times out a slow call, aborts the tool and does not retry it", async () => {
    const policies = new ToolCallPolicies(SETTINGS);
    const slow = probe("slow", { delayMs: 5_000 });
    const started = performance.now();
    const outcome = await policies.run(slow.entry, 50, never, (s) => slow.entry.call({}, ctx(s)));
    expect(performance.now() - started).to.be.below(2_000);
    expect(outcome.timedOut).to.equal(true);
    expect(outcome.attempts).to.equal(1);
    expect(outcome.output.error).to.match(/timed out after 50 ms/);
    await waitUntil(() => slow.calls[0]?.aborted === true);
  });

  it("opens the breaker after consecutive transient failures, fails fast, then closes after a good trial", async () => {
    const policies = new ToolCallPolicies({ ...SETTINGS, maxRetries: 0 });
    const down = probe("down", {
      idempotent: false,
      script: [TRANSIENT, TRANSIENT, TRANSIENT],
    });
    const call = () => policies.run(down.entry, 1_000, never, (s) => down.entry.call({}, ctx(s)));
    for (let i = 0; i < 3; i++) await call();
    expect(policies.breakerStates()).to.deep.equal([{ breakerKey: "builtin:down", state: "open" }]);

    const refused = await call();
    expect(refused.attempts).to.equal(0);
    expect(refused.output.error).to.match(/is failing/);
    expect(down.calls).to.have.length(3);

    await new Promise((r) => setTimeout(r, 250));
    const trial = await call();
    expect(trial.output.ok).to.equal(true);
    expect(trial.breaker).to.equal("closed");
  });

  it("shares a breaker between the tools of one family only", async () => {
    const policies = new ToolCallPolicies({ ...SETTINGS, maxRetries: 0, breakerThreshold: 1 });
    const a = probe("a", { family: "web", script: [TRANSIENT] });
    const b = probe("b", { family: "web" });
    const c = probe("c", { family: "fs" });
    await policies.run(a.entry, 1_000, never, (s) => a.entry.call({}, ctx(s)));
    const sameFamily = await policies.run(b.entry, 1_000, never, (s) => b.entry.call({}, ctx(s)));
    const otherFamily = await policies.run(c.entry, 1_000, never, (s) => c.entry.call({}, ctx(s)));
    expect(sameFamily.attempts).to.equal(0);
    expect(otherFamily.output.ok).to.equal(true);
  });

  it("refuses calls beyond the bulkhead's slots and queue", async () => {
    const policies = new ToolCallPolicies({
      ...SETTINGS,
      bulkheadConcurrency: 1,
      bulkheadQueue: 0,
    });
    const slow = probe("busy", { delayMs: 100 });
    const first = policies.run(slow.entry, 1_000, never, (s) => slow.entry.call({}, ctx(s)));
    const second = await policies.run(slow.entry, 1_000, never, (s) => slow.entry.call({}, ctx(s)));
    expect(second.output.error).to.match(/busy/);
    expect((await first).output.ok).to.equal(true);
  });

  it("settles as aborted when the turn aborts mid-call", async () => {
    const policies = new ToolCallPolicies(SETTINGS);
    const slow = probe("cancelled", { delayMs: 5_000 });
    const controller = new AbortController();
    const running = policies.run(slow.entry, 10_000, controller.signal, (s) =>
      slow.entry.call({}, ctx(s)),
    );
    setTimeout(() => controller.abort(), 30);
    const outcome = await running;
    expect(outcome.aborted).to.equal(true);
    expect(outcome.timedOut).to.equal(false);
    expect(outcome.output.error).to.equal("aborted");
    await waitUntil(() => slow.calls[0]?.aborted === true);
  });
});

describe("tools: call policies, edge cases", () => {
  it("turns a tool that throws into an internal-error result and reports it", async () => {
    const errors: string[] = [];
    const policies = new ToolCallPolicies(SETTINGS, {
      onToolError: (entry, err) => errors.push(`${entry.name}: ${err.message}`),
    });
    const broken = probe("broken");
    const outcome = await policies.run(broken.entry, 1_000, never, async () => {
      throw new SyntaxError("Range out of order");
    });
    expect(outcome.output).to.include({
      ok: false,
      error: "internal error in broken: Range out of order",
    });
    expect(errors).to.deep.equal(["broken: Range out of order"]);
  });

  it("bounds the whole call, retries included", async () => {
    const policies = new ToolCallPolicies({ ...SETTINGS, maxRetries: 50, retryInitialDelayMs: 40 });
    const flaky = probe("flaky", { delayMs: 20, script: Array(50).fill(TRANSIENT) });
    const started = performance.now();
    const outcome = await policies.run(flaky.entry, 300, never, (s) =>
      flaky.entry.call({}, ctx(s)),
    );
    expect(performance.now() - started).to.be.below(1_500);
    expect(outcome.timedOut).to.equal(true);
    expect(outcome.attempts).to.be.above(1);
  });

  it("counts a tool that gives up when its signal fires at the bound as a timeout", async () => {
    const policies = new ToolCallPolicies({ ...SETTINGS, breakerThreshold: 1, maxRetries: 0 });
    const quitter = probe("quitter", { delayMs: 5_000 });
    const outcome = await policies.run(quitter.entry, 50, never, (s) =>
      quitter.entry.call({}, ctx(s)),
    );
    expect(outcome.timedOut).to.equal(true);
    expect(outcome.output.error).to.match(/timed out after 50 ms/);
    expect(outcome.breaker).to.equal("open");
  });

  it("does not hold a remote site's failures against the source", async () => {
    const policies = new ToolCallPolicies({ ...SETTINGS, breakerThreshold: 1, maxRetries: 1 });
    const remote = { ...TRANSIENT, remote: true };
    const web = probe("web", { script: [remote, remote, remote, remote] });
    const first = await policies.run(web.entry, 1_000, never, (s) => web.entry.call({}, ctx(s)));
    expect(first.output).to.include({ ok: false, error: "503 upstream" });
    expect(first.attempts).to.equal(2);
    const second = await policies.run(web.entry, 1_000, never, (s) => web.entry.call({}, ctx(s)));
    expect(second.attempts).to.equal(2);
    expect(second.breaker).to.equal("closed");
  });

  it("refuses calls at once while a half-open breaker's trial call runs", async () => {
    const policies = new ToolCallPolicies({
      ...SETTINGS,
      maxRetries: 0,
      breakerThreshold: 1,
      breakerHalfOpenAfterMs: 50,
    });
    const slow = probe("trial", { idempotent: false, delayMs: 500, script: [TRANSIENT] });
    await policies.run(slow.entry, 5_000, never, (s) => slow.entry.call({}, ctx(s)));
    await new Promise((r) => setTimeout(r, 80));
    const trial = policies.run(slow.entry, 5_000, never, (s) => slow.entry.call({}, ctx(s)));
    await new Promise((r) => setTimeout(r, 20));
    const started = performance.now();
    const refused = await policies.run(slow.entry, 5_000, never, (s) =>
      slow.entry.call({}, ctx(s)),
    );
    expect(performance.now() - started).to.be.below(100);
    expect(refused.attempts).to.equal(0);
    expect((await trial).output.ok).to.equal(true);
  });

  it("settles a call waiting for a bulkhead slot as soon as its turn aborts", async () => {
    const policies = new ToolCallPolicies({
      ...SETTINGS,
      bulkheadConcurrency: 1,
      bulkheadQueue: 4,
    });
    const slow = probe("queue", { delayMs: 1_000 });
    const running = policies.run(slow.entry, 5_000, never, (s) => slow.entry.call({}, ctx(s)));
    const controller = new AbortController();
    const queued = policies.run(slow.entry, 5_000, controller.signal, (s) =>
      slow.entry.call({}, ctx(s)),
    );
    setTimeout(() => controller.abort(), 50);
    const started = performance.now();
    const outcome = await queued;
    expect(performance.now() - started).to.be.below(500);
    expect(outcome).to.include({ aborted: true, attempts: 0 });
    expect((await running).output.ok).to.equal(true);
    expect(slow.calls).to.have.length(1);
  });
});

function ctx(signal: AbortSignal) {
  return {
    workspaceRoot: "/nonexistent",
    signal,
    limits: {
      commandTimeoutMs: 1_000,
      maxCommandTimeoutMs: 1_000,
      commandOutputMaxBytes: 1_024,
      readFileMaxBytes: 1_024,
      webFetchTimeoutMs: 1_000,
      webFetchMaxBytes: 1_024,
      webFetchAllowPrivate: false,
    },
  };
}

async function waitUntil(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 5));
  }
}
