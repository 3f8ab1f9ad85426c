/**
 * ToolOrchestrator over a real TurnEmitter (Redis) and store: announcement before execution,
 * read-only calls in parallel and mutating ones alone, results in call order, terminal calls
 * last, invalid calls as ok:false results, long results cut with an artifact, live output
 * deltas, replay of recorded results, and cancel vs hand-back.
 */
import { expect } from "chai";
import Transport from "winston-transport";
import { z } from "zod";
import { ConfigSchema } from "../../../src/config/schema.js";
import type { ToolCall } from "../../../src/context/message.js";
import { TurnEmitter } from "../../../src/events/turn-emitter.js";
import { createLogger } from "../../../src/obs/logger.js";
import { builtinEntry } from "../../../src/tools/builtin/builtin-source.js";
import { finalResponseTool } from "../../../src/tools/builtin/final-response.js";
import { ToolCallPolicies } from "../../../src/tools/orchestrator/call-policy.js";
import { ToolOrchestrator, type TurnTools } from "../../../src/tools/orchestrator/orchestrator.js";
import type { ToolEntry } from "../../../src/tools/source.js";
import type { Tool } from "../../../src/tools/tool.js";
import { RecordedTurn } from "../../../src/turn/recorded-turn.js";
import { EventsFixture, eventSettings, target } from "../../events/helpers.js";
import { probe } from "./probe-tools.js";

const TOOLS_CONFIG = ConfigSchema.parse({}).tools;

interface Harness {
  orchestrator: ToolOrchestrator;
  events(): Promise<{ type: string; data: Record<string, unknown> }[]>;
  abort(reason: "cancel" | "shutdown"): void;
}

/** Most calls running at one instant (an end at the same instant as a start frees its slot first). */
function maxConcurrent(calls: { start: number; end: number }[]): number {
  const marks = calls.flatMap((c) => [
    { at: c.start, delta: 1 },
    { at: c.end, delta: -1 },
  ]);
  marks.sort((x, y) => x.at - y.at || x.delta - y.delta);
  let running = 0;
  let max = 0;
  for (const m of marks) {
    running += m.delta;
    max = Math.max(max, running);
  }
  return max;
}

describe("tools: ToolOrchestrator", () => {
  let fx: EventsFixture;

  before(async () => {
    fx = await EventsFixture.open("orchestrator");
  });
  after(async () => {
    await fx.close();
  });

  async function harness(
    entries: ToolEntry[],
    overrides: Partial<TurnTools> & { resultMaxChars?: number; parallelism?: number } = {},
  ): Promise<Harness> {
    const keys = fx.freshKeys();
    const sessionId = fx.id("s");
    const turn = target(sessionId, fx.id("t"));
    await fx.redis.set(keys.sessionSeq(sessionId), 0);
    const emitter = new TurnEmitter(
      fx.appender(eventSettings(), keys),
      turn,
      eventSettings(),
      undefined,
    );
    const controller = new AbortController();
    let reason: string | null = null;
    const orchestrator = new ToolOrchestrator({
      emitter,
      signal: controller.signal,
      abortKind: () =>
        reason === "cancel" ? "cancel" : reason === "shutdown" ? "hand_back" : null,
      tools: { byName: new Map(entries.map((e) => [e.name, e])), specs: [] },
      explainMissing: (name) => ({ error: `unknown tool "${name}"`, invalid: true }),
      log: createLogger("test", "error"),
      policies: new ToolCallPolicies(TOOLS_CONFIG),
      settings: {
        ...TOOLS_CONFIG,
        resultMaxChars: overrides.resultMaxChars ?? TOOLS_CONFIG.resultMaxChars,
        parallelism: overrides.parallelism ?? 4,
      },
      context: { workspaceRoot: "/nonexistent", limits: TOOLS_CONFIG },
      attempt: 1,
      recorded: RecordedTurn.empty,
      turnId: turn.turnId,
      saveArtifact: async (id, _tool, content) => {
        const saved = await fx.store.putArtifact(
          {
            id,
            sessionId,
            turnId: turn.turnId,
            userId: turn.userId,
            kind: "tool_output",
            name: "out.json",
            contentType: "application/json",
            createdAt: Date.now(),
          },
          Buffer.from(content),
        );
        return { id: saved.id, size_bytes: saved.sizeBytes, sha256: saved.sha256 };
      },
      ...overrides,
    });
    return {
      orchestrator,
      async events() {
        await emitter.flush();
        return (await fx.hot(sessionId, keys)).map(([, envelope]) => {
          const parsed = JSON.parse(envelope) as { type: string; data: Record<string, unknown> };
          return { type: parsed.type, data: parsed.data };
        });
      },
      abort(why) {
        reason = why;
        controller.abort();
      },
    };
  }

  const call = (id: string, name: string, args: unknown = {}): ToolCall => ({
    id,
    name,
    arguments: typeof args === "string" ? args : JSON.stringify(args),
  });

  it("runs read-only calls in parallel (bounded) and answers in call order", async () => {
    const read = probe("read", { delayMs: 80 });
    const h = await harness([read.entry], { parallelism: 4 });
    const calls = Array.from({ length: 8 }, (_, i) => call(`c${i}`, "read", { value: `v${i}` }));
    const started = performance.now();
    const outcome = await h.orchestrator.runRound(1, calls);
    const elapsed = performance.now() - started;
    expect(elapsed).to.be.below(8 * 80);
    expect(maxConcurrent(read.calls)).to.equal(4);
    expect(
      outcome.observations.map((o) => (o.role === "tool" ? o.tool_call_id : "")),
    ).to.deep.equal(calls.map((c) => c.id));
    expect(outcome.observations[3]?.content).to.contain('"echo":"v3"');

    const events = await h.events();
    const firstResult = events.findIndex((e) => e.type === "tool_result");
    const announced = events.slice(0, firstResult).filter((e) => e.type === "tool_call");
    expect(announced).to.have.length(8);
  });

  it("runs a mutating call alone, after the calls before it and before the calls after it", async () => {
    const read = probe("read", { delayMs: 40 });
    const write = probe("write", { kind: "mutating", delayMs: 40 });
    const h = await harness([read.entry, write.entry]);
    await h.orchestrator.runRound(1, [
      call("a", "read"),
      call("b", "read"),
      call("w", "write"),
      call("c", "read"),
    ]);
    const [w] = write.calls;
    const [a, b, c] = read.calls;
    expect(w && a && b && c).to.not.equal(undefined);
    if (!w || !a || !b || !c) return;
    expect(w.start).to.be.at.least(Math.max(a.end, b.end));
    expect(c.start).to.be.at.least(w.end);
    expect(a.start).to.be.below(b.end);
  });

  it("turns bad JSON, unknown tools and invalid arguments into ok:false results", async () => {
    const read = probe("read");
    const log = createLogger("test", "debug");
    const lines: Record<string, unknown>[] = [];
    log.clear().add(
      new (class extends Transport {
        override log(info: Record<string, unknown>, next: () => void) {
          lines.push(info);
          next();
        }
      })(),
    );
    const h = await harness([read.entry], { log });
    const outcome = await h.orchestrator.runRound(1, [
      call("j", "read", '{"value": '),
      call("u", "nope"),
      call("v", "read", { value: 42 }),
      call("ok", "read", { value: "fine" }),
    ]);
    const texts = outcome.observations.map((o) => o.content);
    expect(texts[0]).to.match(/arguments are not valid JSON/);
    expect(texts[1]).to.match(/unknown tool \\"nope\\"/);
    expect(texts[2]).to.match(/invalid arguments for read: value/);
    expect(texts[3]).to.contain('"ok":true');
    expect(outcome.guard.map((g) => g.invalid)).to.deep.equal([true, true, true, false]);
    expect(read.calls).to.have.length(1);
    const results = (await h.events()).filter((e) => e.type === "tool_result");
    expect(results).to.have.length(4);
    expect(results[0]?.data).to.include({ ok: false, invalid: true, result_v: 2 });
    // One log line per call, naming the tool and the call: debug when ok, info otherwise.
    expect(lines.map((l) => [l.level, l.tool, l.tool_call_id, l.outcome])).to.have.deep.members([
      ["info", "read", "j", "invalid_call"],
      ["info", "nope", "u", "invalid_call"],
      ["info", "read", "v", "invalid_call"],
      ["debug", "read", "ok", "ok"],
    ]);
  });

  it("runs a terminal call after every other call and returns its answer", async () => {
    const slow = probe("slow", { delayMs: 50 });
    const final = builtinEntry(finalResponseTool as Tool);
    const h = await harness([slow.entry, final]);
    const outcome = await h.orchestrator.runRound(1, [
      call("f", "final_response", { content: "done" }),
      call("s", "slow"),
      call("f2", "final_response", { content: "again" }),
    ]);
    expect(outcome.final).to.deep.equal({ answer: "done", tool: "final_response" });
    const results = (await h.events()).filter((e) => e.type === "tool_result");
    expect(results.map((e) => e.data.tool_call_id)).to.deep.equal(["s", "f", "f2"]);
    expect(results[2]?.data.ok).to.equal(false);
    expect(
      outcome.observations.map((o) => (o.role === "tool" ? o.tool_call_id : "")),
    ).to.deep.equal(["f", "s", "f2"]);
  });

  it("cuts a long result for the model and keeps the whole as an artifact", async () => {
    const big: Tool<{ n: number }> = {
      name: "big",
      description: "big output",
      version: "1",
      kind: "read_only",
      family: "big",
      policy: { idempotent: true },
      input: z.object({ n: z.number() }),
      run: async ({ n }) => ({ ok: true, data: { text: "x".repeat(n) } }),
    };
    const h = await harness([builtinEntry(big as Tool)], { resultMaxChars: 1_000 });
    const outcome = await h.orchestrator.runRound(1, [call("b", "big", { n: 50_000 })]);
    const text = outcome.observations[0]?.content ?? "";
    expect(text.length).to.be.below(1_200);
    expect(text).to.match(/chars omitted; the whole output is artifact art_[0-9a-f]{24}/);
    const [result] = (await h.events()).filter((e) => e.type === "tool_result");
    const data = result?.data as {
      data: unknown;
      preview: string;
      artifact: { id: string; size_bytes: number };
      meta: { truncated: boolean; original_chars: number; output_chars: number };
    };
    expect(data.data).to.equal(null);
    expect(data.preview).to.equal(text);
    expect(data.meta).to.include({ truncated: true, output_chars: text.length });
    expect(data.meta.original_chars).to.be.above(50_000);
    const stored = await fx.store.getArtifact(data.artifact.id);
    expect(stored?.content.toString()).to.have.length(data.meta.original_chars);
  });

  it("replays a recorded result without running the tool again", async () => {
    const read = probe("read");
    const first = await harness([read.entry]);
    const calls = [call("r1", "read", { value: "once" })];
    const shown = await first.orchestrator.runRound(1, calls);
    const events = await first.events();
    const recorded = RecordedTurn.fromEvents(
      "t",
      events.map((e, i) => ({
        seq: i + 1,
        turnId: "t",
        type: e.type,
        envelope: JSON.stringify({ data: e.data }),
      })) as never,
    );
    const second = await harness([read.entry], { recorded });
    const replayed = await second.orchestrator.runRound(1, calls);
    expect(read.calls).to.have.length(1);
    expect(replayed.observations).to.deep.equal(shown.observations);
  });

  it("records aborted results when the turn is cancelled mid-round", async () => {
    const slow = probe("slow", { delayMs: 10_000 });
    const h = await harness([slow.entry]);
    const round = h.orchestrator.runRound(1, [call("a", "slow"), call("b", "slow")]);
    setTimeout(() => h.abort("cancel"), 50);
    await round;
    const results = (await h.events()).filter((e) => e.type === "tool_result");
    expect(results).to.have.length(2);
    for (const r of results) {
      expect(r.data).to.include({ ok: false, error: "aborted" });
      expect((r.data.meta as { aborted: boolean }).aborted).to.equal(true);
    }
    expect(slow.calls.every((c) => c.aborted)).to.equal(true);
  });

  it("on a hand-back records nothing for idempotent or unstarted calls, so the next attempt runs them", async () => {
    const slow = probe("slow", { delayMs: 10_000 });
    const write = probe("write", { kind: "mutating", idempotent: false, delayMs: 10_000 });
    const h = await harness([slow.entry, write.entry], { parallelism: 1 });
    const round = h.orchestrator.runRound(1, [call("a", "slow"), call("w", "write")]);
    setTimeout(() => h.abort("shutdown"), 50);
    await round;
    expect(write.calls).to.have.length(0);
    expect((await h.events()).filter((e) => e.type === "tool_result")).to.have.length(0);
  });

  it("on a hand-back records a mutating call cut off mid-way as interrupted", async () => {
    const write = probe("write", { kind: "mutating", idempotent: false, delayMs: 10_000 });
    const h = await harness([write.entry]);
    const round = h.orchestrator.runRound(1, [call("w", "write")]);
    setTimeout(() => h.abort("shutdown"), 50);
    await round;
    const results = (await h.events()).filter((e) => e.type === "tool_result");
    expect(results).to.have.length(1);
    expect(String(results[0]?.data.error)).to.match(/^interrupted: the worker shut down/);
  });
});
