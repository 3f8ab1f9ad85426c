/**
 * TurnContext against the real simulator over HTTP (or a local stub provider where the simulator
 * cannot say it), with a real ModelGate (ModelBudget on Redis) and a real TurnEmitter whose
 * `compaction` events are read back from Redis: the trigger boundary, a summary call that fails,
 * hangs or answers garbage (fallback trim), a summary too long for its budget (cut), and a
 * single input larger than the window (minimal).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import Transport from "winston-transport";
import { ConfigSchema, type ModelConfig, ModelConfigSchema } from "../../src/config/schema.js";
import {
  COMPACTION_INSTRUCTION_HEAD,
  SUMMARY_PREFIX,
} from "../../src/context/compaction/summary-prompt.js";
import type { ContextMessage } from "../../src/context/message.js";
import { isNormalized } from "../../src/context/normalize.js";
import { TokenCalibration } from "../../src/context/token-calibration.js";
import { countPrompt, countTextTokens } from "../../src/context/token-count.js";
import type { EventType } from "../../src/events/envelope.js";
import type { LogEvent } from "../../src/events/event-log.js";
import { TurnEmitter } from "../../src/events/turn-emitter.js";
import { ModelClients, type ToolSpec } from "../../src/llm/chat-stream.js";
import { EndpointBreakers } from "../../src/llm/endpoint-breaker.js";
import { ModelBudget } from "../../src/llm/model-budget.js";
import { createLogger } from "../../src/obs/logger.js";
import { ModelGate } from "../../src/turn/model-gate.js";
import { RecordedTurn } from "../../src/turn/recorded-turn.js";
import { TurnContext } from "../../src/turn/turn-context.js";
import { EventsFixture, eventSettings, target } from "../events/helpers.js";
import { startSim } from "../sim/helpers.js";

const MODEL = "small";
const WINDOW = 4_096;
const MAX_OUTPUT = 512;
const SETTINGS = ConfigSchema.parse({}).context;
const CUT_MARKER = /…\[\d+ chars cut to fit the context\]…/;
const TOOLS: ToolSpec[] = ["read_file", "execute_command"].map((name) => ({
  type: "function",
  function: {
    name,
    description: `the ${name} tool`,
    parameters: { type: "object", properties: { path: { type: "string" } } },
  },
}));

/** Common words, one o200k token each with their leading space: n words ≈ n tokens. */
const COMMON = ["the", "of", "and", "to", "in", "is", "it", "that", "for", "on"];
const words = (n: number) => Array.from({ length: n }, (_, i) => COMMON[i % 10]).join(" ");

/** Six earlier exchanges with a tool call each, then the current input of `currentWords` words. */
function history(currentWords: number, olderTag = ""): ContextMessage[] {
  const items: ContextMessage[] = [{ role: "system", content: "You are a careful agent." }];
  for (let i = 0; i < 6; i++) {
    const id = `call_${i}`;
    items.push(
      { role: "user", content: `Step ${i}: ${words(40)} ${olderTag}`.trim() },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ id, name: "read_file", arguments: `{"path":"f${i}.txt"}` }],
      },
      { role: "tool", tool_call_id: id, content: `file ${i}: ${words(250)}` },
      { role: "assistant", content: `Done with step ${i}: ${words(30)}` },
    );
  }
  items.push({ role: "user", content: `Now finish the work: ${words(currentWords)}` });
  return items;
}

/** What TurnContext projects for a request (a fresh calibration, as in the rigs). */
const projected = (messages: readonly ContextMessage[]) =>
  new TokenCalibration().estimate(MODEL, countPrompt(messages, TOOLS));

/** The current input's size that makes the request project exactly `tokens`. */
function wordsFor(tokens: number, olderTag = ""): number {
  let lo = 0;
  let hi = 4_000;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (projected(history(mid, olderTag)) < tokens) lo = mid + 1;
    else hi = mid;
  }
  expect(projected(history(lo, olderTag)), "filler lands on the count").to.equal(tokens);
  return lo;
}

class Capture extends Transport {
  readonly lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)));
    next();
  }
}

type Data = Record<string, unknown>;

describe("turn: TurnContext (simulator over HTTP, Redis)", () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A TurnContext for MODEL at `baseUrl`, its events and log lines, and the model's budget. */
  async function rig(
    baseUrl: string,
    prior: ContextMessage[] = [],
    model: Partial<ModelConfig> = {},
    recorded: RecordedTurn = RecordedTurn.empty,
  ) {
    const fx = await EventsFixture.open("turn-context");
    cleanups.push(() => fx.close());
    const keys = fx.freshKeys();
    const sessionId = fx.id("s");
    await fx.redis.set(keys.sessionSeq(sessionId), 0);
    const emitter = new TurnEmitter(
      fx.appender(eventSettings(), keys),
      target(sessionId, "t1"),
      { deltaFlushMs: 50, deltaFlushChars: 160 },
      undefined,
    );
    const config = ModelConfigSchema.parse({
      baseUrl,
      model: "farm-sim-1",
      contextWindowTokens: WINDOW,
      maxOutputTokens: MAX_OUTPUT,
      maxRetries: 0,
      requestTimeoutMs: 10_000,
      idleTimeoutMs: 5_000,
      maxConcurrency: 2,
      ...model,
    });
    const clients = new ModelClients({ [MODEL]: config }, new EndpointBreakers());
    cleanups.push(() => clients.close());
    // The budget's keys live under the fixture's prefix: `fx.close()` deletes them.
    const budget = new ModelBudget(fx.redis, fx.prefix, { [MODEL]: config });
    const log = createLogger("test-turn-context", "info");
    const capture = new Capture();
    log.clear().add(capture);
    const ctx = new TurnContext(prior, {
      model: MODEL,
      clients,
      gate: new ModelGate(budget, 1_000),
      emitter,
      signal: new AbortController().signal,
      calibration: new TokenCalibration(),
      settings: SETTINGS,
      attempt: recorded.isEmpty ? 1 : 2,
      recorded,
      log,
    });
    return {
      ctx,
      clients,
      logLines: capture.lines,
      /** Every event emitted so far, read back from the session's stream. */
      async events(): Promise<{ type: string; data: Data }[]> {
        await emitter.flush();
        return (await fx.hot(sessionId, keys)).map(([, e]) => JSON.parse(e));
      },
      /** What a resumed attempt reads back from this one's events. */
      async record(): Promise<RecordedTurn> {
        await emitter.flush();
        const events = (await fx.hot(sessionId, keys)).map(([, envelope]): LogEvent => {
          const e = JSON.parse(envelope) as { seq: number; turn_id: string; type: EventType };
          return { seq: e.seq, turnId: e.turn_id, type: e.type, envelope };
        });
        return RecordedTurn.fromEvents(target(sessionId, "t1").turnId, events);
      },
      async compactions(): Promise<Data[]> {
        return (await this.events()).filter((e) => e.type === "compaction").map((e) => e.data);
      },
      async inFlight(): Promise<number> {
        return (await budget.usage()).find((u) => u.model === MODEL)?.inFlight ?? -1;
      },
      /** The view sent to the model for real: the provider must take it. */
      async send(messages: ContextMessage[]) {
        const signal = new AbortController().signal;
        return clients.stream(MODEL, { messages, tools: TOOLS, signal, onDelta: () => undefined });
      },
    };
  }

  async function simUrl(): Promise<string> {
    const sim = await startSim({ contextWindowTokens: WINDOW });
    cleanups.push(() => sim.close());
    return sim.url;
  }

  /** A provider that streams `answer` to every request and records the request bodies. */
  async function stubModel(answer: string) {
    const requests: { messages: { role: string; content: string }[]; max_tokens: number }[] = [];
    const chunk = (body: Data) =>
      `data: ${JSON.stringify({ id: "stub", object: "chat.completion.chunk", created: 0, model: "stub", ...body })}\n\n`;
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (part) => {
        body += part;
      });
      req.on("end", () => {
        requests.push(JSON.parse(body));
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.end(
          chunk({ choices: [{ index: 0, delta: { role: "assistant", content: answer } }] }) +
            chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }) +
            chunk({
              choices: [],
              usage: { prompt_tokens: 40, completion_tokens: 2, total_tokens: 42 },
            }) +
            "data: [DONE]\n\n",
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const closed = new Promise<void>((resolve) => server.on("close", resolve));
    cleanups.push(() => {
      server.close();
      server.closeAllConnections();
      return closed;
    });
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}/v1`, requests };
  }

  /** The checks every compacted view passes: valid, within the limit, ends with the input. */
  function expectFits(ctx: TurnContext, event: Data, input: ContextMessage) {
    const view = ctx.view();
    expect(isNormalized(view)).to.equal(true);
    expect(view[0]?.role).to.equal("system");
    expect(view.at(-1)).to.deep.equal(input);
    expect(Number(event.tokens_after)).to.be.at.most(Number(event.limit_tokens));
    expect(projected(view)).to.be.at.most(ctx.budget.limitTokens);
    expect(ctx.compacted).to.equal(true);
  }

  describe("a resumed attempt", () => {
    it("replays every compaction recorded before a round's call, without a model call", async () => {
      const first = await rig(await simUrl());
      const items = history(wordsFor(first.ctx.budget.triggerTokens));
      first.ctx.append(...items);
      await first.ctx.ensureFits(1, TOOLS);
      // The provider refused the length after all: a second compaction in the same round.
      await first.ctx.ensureFits(1, TOOLS, "overflow_recovery");
      const recordedEvents = await first.compactions();
      expect(recordedEvents.map((e) => e.index)).to.deep.equal([1, 2]);
      expect(recordedEvents[0]).to.include({ strategy: "summary" });

      // Attempt 2 talks to a model that would record any call: it must get none.
      const stub = await stubModel("a different summary");
      const second = await rig(stub.url, [], {}, await first.record());
      second.ctx.append(...items);
      const fitted = await second.ctx.ensureFits(1, TOOLS);
      expect(stub.requests).to.have.length(0);
      expect(fitted.messages).to.deep.equal(first.ctx.view());
      expect(second.ctx.summaryUsage.total_tokens).to.equal(first.ctx.summaryUsage.total_tokens);
      expect(second.logLines.map((l) => l.message)).to.deep.equal([
        "context compaction replayed",
        "context compaction replayed",
      ]);
    });
  });

  describe("the trigger boundary", () => {
    it("does not compact a request one token below the trigger", async () => {
      const r = await rig(await simUrl());
      // wunder's formula with the default settings: 3072 and 2764 for this model.
      const limit = WINDOW - MAX_OUTPUT - SETTINGS.safetyMarginTokens;
      const triggerTokens = Math.floor(limit * SETTINGS.triggerRatio);
      expect(r.ctx.budget).to.deep.equal({
        windowTokens: WINDOW,
        limitTokens: limit,
        triggerTokens,
      });
      const items = history(wordsFor(r.ctx.budget.triggerTokens - 1));
      r.ctx.append(...items);
      const result = await r.ctx.ensureFits(2, TOOLS);
      expect(result.messages).to.deep.equal(items);
      expect(result.usage).to.include({
        projected_request_tokens: r.ctx.budget.triggerTokens - 1,
        context_tokens: r.ctx.budget.triggerTokens - 1,
        context_usage_source: "estimated",
        message_count: items.length,
        limit_tokens: r.ctx.budget.limitTokens,
        trigger_tokens: r.ctx.budget.triggerTokens,
      });
      expect(r.ctx.view()).to.deep.equal(items);
      expect(r.ctx.compacted).to.equal(false);
      expect(await r.events()).to.deep.equal([]);
      expect(r.logLines).to.deep.equal([]);
      expect(r.ctx.summaryUsage.total_tokens).to.equal(0);
    });

    it("compacts (summary) a request exactly at the trigger, one event and one log line", async () => {
      const r = await rig(await simUrl());
      const items = history(wordsFor(r.ctx.budget.triggerTokens));
      r.ctx.append(...items);
      const result = await r.ctx.ensureFits(2, TOOLS);
      const compactions = await r.compactions();
      expect(compactions).to.have.length(1);
      const event = compactions[0] as Data;
      expect(event).to.include({
        model_round: 2,
        reason: "history",
        trigger: "threshold",
        strategy: "summary",
        status: "done",
        limit_tokens: r.ctx.budget.limitTokens,
        trigger_tokens: r.ctx.budget.triggerTokens,
        window_tokens: WINDOW,
      });
      expect(event).to.not.have.property("summary_error");
      expect(Number(event.tokens_before)).to.be.at.least(r.ctx.budget.triggerTokens);
      expect(Number(event.tokens_after)).to.be.below(Number(event.tokens_before));
      expect(result.messages).to.deep.equal(r.ctx.view());
      expect(result.usage).to.include({
        projected_request_tokens: event.tokens_after,
        context_usage_source: "estimated",
        message_count: result.messages.length,
      });
      expectFits(r.ctx, event, items.at(-1) as ContextMessage);
      const summary = result.messages.find((m) => m.role === "user" && m.summary);
      expect(summary?.content.startsWith(SUMMARY_PREFIX)).to.equal(true);
      expect(event.summary_chars).to.equal(summary?.content.length);
      expect(r.ctx.summaryUsage.total_tokens).to.be.above(0);
      expect(await r.inFlight()).to.equal(0);
      // The log line carries the event's figures.
      expect(r.logLines).to.have.length(1);
      const figures = Object.keys(event).filter((k) => typeof event[k] !== "object");
      expect(figures).to.include.members(["reason", "strategy", "tokens_after", "summary_ms"]);
      for (const key of figures.filter((k) => k !== "summary")) {
        expect(r.logLines[0], key).to.have.property(key, event[key]);
      }
      expect(r.logLines[0]?.message).to.equal("context compacted");
      // The compacted request goes through the simulator.
      expect((await r.send(result.messages)).content).to.not.equal("");
    });
  });

  describe("a summary call that does not give a summary falls back to trim", () => {
    // A `summary_fault` directive in a summarised user message reaches the summary request
    // through its transcript (the simulator applies only that one to summary requests).
    it("a 500 (a summary_fault directive in the summarised transcript)", async () => {
      const tag = "[[sim summary_fault=500]]";
      const r = await rig(await simUrl());
      const items = history(wordsFor(r.ctx.budget.triggerTokens, tag), tag);
      r.ctx.append(...items);
      const result = await r.ctx.ensureFits(1, TOOLS);
      const [event, ...more] = await r.compactions();
      expect(more).to.deep.equal([]);
      expect(event).to.include({ reason: "history", strategy: "trim", status: "fallback" });
      expect(String(event?.summary_error)).to.match(/model answered 500/);
      expectFits(r.ctx, event as Data, items.at(-1) as ContextMessage);
      expect(result.messages.some((m) => m.role === "user" && m.summary)).to.equal(false);
      expect(Number(event?.retained_items)).to.be.below(items.length);
      expect(await r.inFlight(), "the permit is given back").to.equal(0);
      expect(r.ctx.summaryUsage.total_tokens).to.equal(0);
    });

    it("a hang: ends after the idle timeout, then trims", async () => {
      const tag = "[[sim summary_fault=hang]]";
      const idleTimeoutMs = 400;
      const requestTimeoutMs = 3_000;
      const r = await rig(await simUrl(), [], { idleTimeoutMs, requestTimeoutMs });
      const items = history(wordsFor(r.ctx.budget.triggerTokens, tag), tag);
      r.ctx.append(...items);
      const started = performance.now();
      await r.ctx.ensureFits(1, TOOLS);
      const elapsed = performance.now() - started;
      const [event] = await r.compactions();
      expect(event).to.include({ strategy: "trim", status: "fallback" });
      expect(String(event?.summary_error)).to.match(/timed out: no data for 400 ms/);
      expect(Number(event?.summary_ms)).to.be.within(idleTimeoutMs - 2, requestTimeoutMs);
      expect(Number(event?.duration_ms)).to.be.at.least(Number(event?.summary_ms));
      expect(elapsed).to.be.below(requestTimeoutMs);
      expectFits(r.ctx, event as Data, items.at(-1) as ContextMessage);
      expect(await r.inFlight()).to.equal(0);
    });

    for (const [name, answer] of [
      ["an empty answer", ""],
      ["a whitespace answer", "  \n\t  \n"],
      ["an answer too short to carry anything", "## Goal\nNone."],
    ]) {
      it(`${name}: trims, and still counts the call's tokens`, async () => {
        const stub = await stubModel(answer as string);
        const r = await rig(stub.url);
        const items = history(wordsFor(r.ctx.budget.triggerTokens));
        r.ctx.append(...items);
        await r.ctx.ensureFits(1, TOOLS);
        const [event] = await r.compactions();
        expect(event).to.include({
          strategy: "trim",
          status: "fallback",
          summary_error: "the summary was empty or too short",
          summary_chars: 0,
        });
        expectFits(r.ctx, event as Data, items.at(-1) as ContextMessage);
        expect(r.ctx.summaryUsage).to.include({
          input_tokens: 40,
          output_tokens: 2,
          total_tokens: 42,
        });
        // One summary request: a system message and the transcript with the instruction last.
        expect(stub.requests).to.have.length(1);
        const request = stub.requests[0];
        expect(request?.messages.map((m) => m.role)).to.deep.equal(["system", "user"]);
        expect(request?.messages[1]?.content).to.match(/^<transcript>\n/);
        expect(request?.messages[1]?.content).to.contain(COMPACTION_INSTRUCTION_HEAD);
        expect(request?.max_tokens).to.equal(MAX_OUTPUT);
      });
    }
  });

  it("cuts a summary longer than its budget (head + tail) and keeps it", async () => {
    const answer = `## Goal\nFinish the work.\n${words(3_000)}\n## Next steps\nShip it.`;
    const stub = await stubModel(answer);
    const r = await rig(stub.url);
    const items = history(wordsFor(r.ctx.budget.triggerTokens));
    r.ctx.append(...items);
    const result = await r.ctx.ensureFits(1, TOOLS);
    const [event] = await r.compactions();
    expect(event).to.include({ strategy: "summary", status: "done" });
    expect(event).to.not.have.property("summary_error");
    expectFits(r.ctx, event as Data, items.at(-1) as ContextMessage);
    const summary = result.messages.find((m) => m.role === "user" && m.summary);
    const content = summary?.content ?? "";
    // summaryMaxTokens (4096) is capped at a sixth of the limit for a small window.
    expect(countTextTokens(content)).to.be.at.most(Math.floor(r.ctx.budget.limitTokens / 6));
    expect(content).to.match(CUT_MARKER);
    expect(content.startsWith(`${SUMMARY_PREFIX}\n## Goal\nFinish the work.`)).to.equal(true);
    expect(content.endsWith("## Next steps\nShip it.")).to.equal(true);
    expect(event?.summary_chars).to.equal(content.length);
  });

  it("cuts one input larger than the window to fit (minimal, oversized_input)", async () => {
    const input: ContextMessage = {
      role: "user",
      content: `Please review this log: ${words(12_000)} END-OF-INPUT`,
    };
    const system: ContextMessage = { role: "system", content: "You are a careful agent." };
    const r = await rig(await simUrl(), [system, input]);
    expect(projected([system, input])).to.be.above(WINDOW);
    const result = await r.ctx.ensureFits(0, TOOLS);
    const [event, ...more] = await r.compactions();
    expect(more).to.deep.equal([]);
    expect(event).to.include({
      reason: "oversized_input",
      trigger: "oversized_input",
      strategy: "minimal",
      status: "done",
      summary_ms: 0,
      retained_items: 2,
    });
    expect(event).to.not.have.property("summary_error");
    expect(Number(event?.tokens_before)).to.be.above(WINDOW);
    expect(Number(event?.tokens_after)).to.be.at.most(Number(event?.limit_tokens));
    expect(result.messages[0]).to.deep.equal(system);
    const cut = result.messages.at(-1);
    expect(result.messages).to.have.length(2);
    expect(cut?.role).to.equal("user");
    expect(cut?.content).to.match(CUT_MARKER);
    expect(cut?.content.startsWith("Please review this log: the of and")).to.equal(true);
    expect(cut?.content.endsWith("END-OF-INPUT")).to.equal(true);
    expect(projected(result.messages)).to.be.at.most(r.ctx.budget.limitTokens);
    expect(r.ctx.summaryUsage.total_tokens).to.equal(0);
    // The simulator (same window) takes the cut request instead of refusing it.
    expect((await r.send(result.messages)).content).to.not.equal("");
  });
});
