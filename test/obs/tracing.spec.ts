/**
 * Traces: a farm configured with an OTLP endpoint exports a turn's spans (OTLP/HTTP JSON) to a
 * real local collector stand-in, in the trace of the request that submitted the turn, with the
 * GenAI attributes; without an endpoint nothing is recorded.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { SpanKind, trace } from "@opentelemetry/api";
import { expect } from "chai";
import { startTracing } from "../../src/obs/tracing.js";
import { allTurnEvents, http, submit, waitForTurn, waitUntil } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const TRACE = "0af7651916cd43dd8448eb211c80319c";
const PARENT = "b7ad6b7169203331";
/** OTLP's span kinds are the API's plus one (0 is "unspecified"). */
const OTLP_INTERNAL = SpanKind.INTERNAL + 1;
const OTLP_CLIENT = SpanKind.CLIENT + 1;
const OTLP_STATUS_ERROR = 2;

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values: OtlpValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: OtlpValue }[];
  status?: { code?: number };
}
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  attrs: Record<string, unknown>;
  error: boolean;
}

/** Receives OTLP/HTTP JSON on /v1/traces, as a collector would, and keeps the spans. */
class Collector {
  readonly spans: ReceivedSpan[] = [];
  url = "";
  private readonly server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/traces") {
        this.spans.push(...readSpans(JSON.parse(Buffer.concat(chunks).toString("utf8"))));
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });

  static async start(): Promise<Collector> {
    const collector = new Collector();
    await new Promise<void>((resolve) => collector.server.listen(0, "127.0.0.1", resolve));
    collector.url = `http://127.0.0.1:${(collector.server.address() as AddressInfo).port}`;
    return collector;
  }

  inTrace(traceId: string): ReceivedSpan[] {
    return this.spans.filter((s) => s.traceId === traceId);
  }

  /** The spans of a trace once its `invoke_agent` span (ended last) has arrived. */
  async turnSpans(traceId: string): Promise<ReceivedSpan[]> {
    await waitUntil(
      "the turn's invoke_agent span",
      async () => this.inTrace(traceId).some((s) => s.name.startsWith("invoke_agent")),
      10_000,
    );
    return this.inTrace(traceId);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function readSpans(body: {
  resourceSpans?: {
    resource?: { attributes?: OtlpSpan["attributes"] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}): ReceivedSpan[] {
  return (body.resourceSpans ?? []).flatMap((rs) => {
    const service = String(attributes(rs.resource?.attributes ?? [])["service.name"]);
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        service,
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId || null,
        name: s.name,
        kind: s.kind,
        attrs: attributes(s.attributes),
        error: s.status?.code === OTLP_STATUS_ERROR,
      })),
    );
  });
}

function attributes(list: OtlpSpan["attributes"]): Record<string, unknown> {
  return Object.fromEntries(list.map(({ key, value }) => [key, plain(value)]));
}

function plain(v: OtlpValue): unknown {
  if (v.arrayValue) return v.arrayValue.values.map(plain);
  if (v.intValue !== undefined) return Number(v.intValue);
  return v.stringValue ?? v.doubleValue ?? v.boolValue;
}

describe("tracing", function () {
  this.timeout(60_000);

  describe("with an OTLP endpoint", () => {
    let collector: Collector;
    let farm: TestFarm;
    const batchDelay = process.env.OTEL_BSP_SCHEDULE_DELAY;

    before(async () => {
      collector = await Collector.start();
      // The SDK's standard knob: export every 100 ms instead of every 5 s.
      process.env.OTEL_BSP_SCHEDULE_DELAY = "100";
      farm = await TestFarm.start({
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, MAX_ROUNDS: "4" },
      });
    });
    after(async () => {
      await farm?.stop();
      await collector?.close();
      if (batchDelay === undefined) delete process.env.OTEL_BSP_SCHEDULE_DELAY;
      else process.env.OTEL_BSP_SCHEDULE_DELAY = batchDelay;
    });

    it("puts invoke_agent → chat / execute_tool spans in the caller's trace, with GenAI attributes", async () => {
      const accepted = await submit(
        farm.url,
        {
          input: '[[sim tool=execute_command args={"command":"echo zebra-7"}]] run quokka-42',
          user_id: "alice",
        },
        { traceparent: `00-${TRACE}-${PARENT}-01` },
      );
      const turn = await waitForTurn(farm.url, accepted.turn_id);
      expect(turn.status).to.equal("completed");
      const spans = await collector.turnSpans(TRACE);

      const agent = spans.find((s) => s.name === "invoke_agent wunder-farm");
      expect(agent, "invoke_agent span").to.not.equal(undefined);
      if (!agent) return;
      expect(agent.service).to.equal("wunder-farm-worker");
      expect(agent.parentSpanId).to.equal(PARENT);
      expect(agent.kind).to.equal(OTLP_INTERNAL);
      expect(agent.error).to.equal(false);
      expect(agent.attrs).to.include({
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "wunder-farm",
        "gen_ai.conversation.id": accepted.session_id,
        "farm.turn.id": accepted.turn_id,
        "farm.user.id": "alice",
        "farm.turn.status": "completed",
        "farm.turn.stop_reason": "model_response",
        "farm.attempt.outcome": "completed",
      });

      const chats = spans.filter((s) => s.name === "chat farm-sim-1");
      expect(chats).to.have.length(2);
      for (const chat of chats) {
        expect(chat.parentSpanId).to.equal(agent.spanId);
        expect(chat.kind).to.equal(OTLP_CLIENT);
        expect(chat.error).to.equal(false);
        expect(chat.attrs).to.include({
          "gen_ai.operation.name": "chat",
          "gen_ai.provider.name": "openai",
          "gen_ai.request.model": "farm-sim-1",
          "gen_ai.conversation.id": accepted.session_id,
          "server.address": "127.0.0.1",
          "farm.model": "sim",
          "farm.call.purpose": "round",
        });
        expect(chat.attrs["gen_ai.usage.input_tokens"]).to.be.above(0);
        expect(chat.attrs["gen_ai.usage.output_tokens"]).to.be.above(0);
        expect(chat.attrs["gen_ai.response.time_to_first_chunk"]).to.be.at.least(0);
      }
      const reasons = chats.map((c) => (c.attrs["gen_ai.response.finish_reasons"] as string[])[0]);
      expect(reasons).to.have.members(["tool_calls", "stop"]);

      const events = await allTurnEvents(farm.url, accepted.turn_id);
      const call = events.find((e) => e.type === "tool_call");
      const tool = spans.find((s) => s.name === "execute_tool execute_command");
      expect(tool?.parentSpanId).to.equal(agent.spanId);
      expect(tool?.kind).to.equal(OTLP_INTERNAL);
      expect(tool?.error).to.equal(false);
      expect(tool?.attrs).to.include({
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "execute_command",
        "gen_ai.tool.call.id": call?.data.tool_call_id,
        "farm.tool.source": "builtin",
        "farm.tool.outcome": "ok",
      });

      // Neither the prompt, the tool's arguments nor its output is in a span.
      const exported = JSON.stringify(spans);
      expect(exported).to.not.contain("quokka-42");
      expect(exported).to.not.contain("zebra-7");
    });

    it("starts the trace the API reported when the caller sent no traceparent", async () => {
      const reply = await http<{ turn_id: string }>(farm.url, "POST", "/v1/turns", {
        input: "hello",
      });
      expect(reply.status).to.equal(202);
      const traceId = reply.headers.get("x-trace-id") ?? "";
      expect(traceId).to.match(/^[0-9a-f]{32}$/);
      expect((await waitForTurn(farm.url, reply.body.turn_id)).status).to.equal("completed");
      const spans = await collector.turnSpans(traceId);
      const agent = spans.find((s) => s.name.startsWith("invoke_agent"));
      expect(agent?.parentSpanId).to.equal(null);
      expect(spans.filter((s) => s.parentSpanId === agent?.spanId)).to.have.length(1);
    });

    it("marks a failing tool call as an error and names its error type", async () => {
      const trace = "1af7651916cd43dd8448eb211c80319d";
      const accepted = await submit(
        farm.url,
        { input: '[[sim tool=execute_command args={"command":"exit 3"}]] run it' },
        { traceparent: `00-${trace}-${PARENT}-01` },
      );
      expect((await waitForTurn(farm.url, accepted.turn_id)).status).to.equal("completed");
      const tool = (await collector.turnSpans(trace)).find((s) =>
        s.name.startsWith("execute_tool"),
      );
      expect(tool?.error).to.equal(true);
      expect(tool?.attrs).to.include({ "error.type": "error", "farm.tool.outcome": "error" });
    });

    it("marks every failed model call and the failed turn as errors", async () => {
      const trace = "2af7651916cd43dd8448eb211c80319e";
      const accepted = await submit(
        farm.url,
        { input: "[[sim fault=500]] hello" },
        { traceparent: `00-${trace}-${PARENT}-01` },
      );
      const turn = await waitForTurn(farm.url, accepted.turn_id);
      expect(turn.status).to.equal("failed");
      const spans = await collector.turnSpans(trace);
      const chats = spans.filter((s) => s.name.startsWith("chat "));
      // The test farm's model retries twice after the first try: one span per try.
      expect(chats).to.have.length(3);
      for (const chat of chats) {
        expect(chat.error).to.equal(true);
        expect(chat.attrs["error.type"]).to.equal("provider_error");
      }
      const agent = spans.find((s) => s.name.startsWith("invoke_agent"));
      expect(agent?.error).to.equal(true);
      expect(agent?.attrs).to.include({
        "error.type": "llm_unavailable",
        "farm.turn.status": "failed",
      });
    });

    it("leaves a caller's trace alone when the caller did not sample it", async () => {
      const trace = "3af7651916cd43dd8448eb211c80319f";
      const accepted = await submit(
        farm.url,
        { input: "hello" },
        { traceparent: `00-${trace}-${PARENT}-00` },
      );
      expect((await waitForTurn(farm.url, accepted.turn_id)).status).to.equal("completed");
      // Another traced turn after it: once its spans are in, this one's would be too.
      const later = await http<{ turn_id: string }>(farm.url, "POST", "/v1/turns", {
        input: "hello again",
      });
      await waitForTurn(farm.url, later.body.turn_id);
      await collector.turnSpans(later.headers.get("x-trace-id") ?? "");
      expect(collector.inTrace(trace)).to.deep.equal([]);
    });
  });

  describe("without an endpoint", () => {
    it("uses the API's no-op tracer: nothing is recorded or exported", async () => {
      const tracing = startTracing({ sampleRatio: 1 }, "worker");
      const span = tracing.tracer.startSpan("invoke_agent wunder-farm");
      expect(span.isRecording()).to.equal(false);
      expect(trace.isSpanContextValid(span.spanContext())).to.equal(false);
      span.end();
      await tracing.shutdown();
    });
  });
});
