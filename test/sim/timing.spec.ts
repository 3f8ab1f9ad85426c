import { expect } from "chai";
import { client, postChat, sleep, startSim, user } from "./helpers.js";

/** Timing assertions are lower bounds only, loosened to 80%: a slow machine must not fail them. */
const atLeast = (ms: number) => ms * 0.8;

describe("sim latency and lifecycle", () => {
  it("waits ttft_ms before the first streamed token", async () => {
    const sim = await startSim();
    try {
      const started = performance.now();
      const stream = await client(sim).chat.completions.create({
        model: "m",
        messages: [user("slow start [[sim ttft_ms=200 reply_tokens=3]]")],
        stream: true,
      });
      let firstContentMs: number | undefined;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) firstContentMs ??= performance.now() - started;
      }
      expect(firstContentMs).to.be.at.least(atLeast(200));
    } finally {
      await sim.close();
    }
  });

  it("spaces streamed tokens by token_delay_ms", async () => {
    const sim = await startSim();
    try {
      const stream = await client(sim).chat.completions.create({
        model: "m",
        messages: [user("drip [[sim token_delay_ms=60 reply_tokens=5]]")],
        stream: true,
      });
      const arrivals: number[] = [];
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) arrivals.push(performance.now());
      }
      expect(arrivals).to.have.length(5);
      const first = arrivals[0] ?? 0;
      const last = arrivals[arrivals.length - 1] ?? 0;
      expect(last - first).to.be.at.least(atLeast(4 * 60));
    } finally {
      await sim.close();
    }
  });

  it("applies the configured ttftMs and tokenDelayMs to a non-streamed answer", async () => {
    const sim = await startSim({ ttftMs: 150, tokenDelayMs: 10 });
    try {
      const started = performance.now();
      await client(sim).chat.completions.create({
        model: "m",
        messages: [user("hi [[sim reply_tokens=6]]")],
      });
      expect(performance.now() - started).to.be.at.least(atLeast(150 + 5 * 10));
    } finally {
      await sim.close();
    }
  });

  it("stops a slow stream and clears its timer when the client disconnects", async () => {
    const sim = await startSim();
    const delayMs = 9_876;
    const pending = new Set<unknown>();
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    // Only this test's unusual delay is tracked, so other timers in the process do not matter.
    globalThis.setTimeout = ((fn: () => void, ms?: number) => {
      const timer = realSet(fn, ms);
      if (ms === delayMs) pending.add(timer);
      return timer;
    }) as typeof setTimeout;
    globalThis.clearTimeout = ((timer: NodeJS.Timeout | undefined) => {
      pending.delete(timer);
      realClear(timer);
    }) as typeof clearTimeout;
    try {
      const abort = new AbortController();
      const res = await postChat(
        sim,
        {
          model: "m",
          stream: true,
          messages: [user(`slow [[sim token_delay_ms=${delayMs} reply_tokens=50]]`)],
        },
        { signal: abort.signal },
      );
      const reader = res.body?.getReader();
      const first = await reader?.read();
      expect(new TextDecoder().decode(first?.value)).to.contain('"role":"assistant"');
      expect(pending.size).to.equal(1);
      abort.abort();
      for (let i = 0; i < 50 && pending.size > 0; i++) await sleep(20);
      expect(pending.size).to.equal(0);
    } finally {
      globalThis.setTimeout = realSet;
      globalThis.clearTimeout = realClear;
      await sim.close();
    }
  });

  it("close() returns promptly with a hung request and an idle keep-alive socket open", async () => {
    const sim = await startSim();
    const idle = await postChat(sim, { model: "m", messages: [user("hi")] });
    expect(idle.status).to.equal(200);
    await idle.arrayBuffer();
    const hung = postChat(sim, { model: "m", messages: [user("wait [[sim fault=hang]]")] }).then(
      () => "answered",
      () => "failed",
    );
    await sleep(100);
    // An upper bound far above a prompt close yet far below the 65 s keep-alive and an endless hang.
    const outcome = await Promise.race([
      sim.close().then(() => "closed"),
      sleep(5_000).then(() => "stuck"),
    ]);
    expect(outcome).to.equal("closed");
    expect(await hung).to.equal("failed");
    const after = await fetch(sim.url.replace(/\/v1$/, "/healthz")).catch(() => "refused");
    expect(after).to.equal("refused");
  });
});
