/**
 * The spans of a turn, named and tagged after the OpenTelemetry GenAI semantic conventions:
 * `invoke_agent wunder-farm` for one attempt of a turn, and under it `chat <model>` for each
 * model call (each try of a round, and compaction summaries) and `execute_tool <tool>` for each
 * tool call the attempt runs.
 *
 * Invariants:
 * - spans carry ids, names, counts and low-cardinality codes only: never prompt or answer text,
 *   tool arguments or results, error messages (they may quote any of these) or secrets;
 * - `error.type` is one of the farm's own codes: an LlmError kind, a turn error code, a tool
 *   outcome, or an exception's class name for an attempt that crashed;
 * - every span of a turn carries `gen_ai.conversation.id` = its session id;
 * - without a parent (a caller that does not trace) the helpers record nothing.
 */
import {
  type Attributes,
  type Context,
  INVALID_SPAN_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import {
  ATTR_ERROR_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
} from "@opentelemetry/semantic-conventions";
import { contextWith, startSpanInTrace, type TraceOrigin } from "./tracing.js";

// The GenAI conventions are still in development: the JS package offers them only from its
// unstable `incubating` entry, so the names the farm relies on are spelled out here.
const OPERATION = "gen_ai.operation.name";
const PROVIDER = "gen_ai.provider.name";
const CONVERSATION = "gen_ai.conversation.id";

/** The agent every turn runs (the farm has one). */
const AGENT_NAME = "wunder-farm";
/** Every model is reached through an OpenAI-compatible endpoint; `server.address` says which. */
const PROVIDER_NAME = "openai";
/** Tools run inside the agent (the worker), not on the client: the conventions' `extension`. */
const TOOL_TYPE = "extension";

/** Where the spans of one attempt of a turn go: under its `invoke_agent` span. */
export interface TurnTrace {
  readonly tracer: Tracer;
  readonly context: Context;
  readonly sessionId: string;
}

export interface TracedTurn extends TraceOrigin {
  id: string;
  sessionId: string;
  userId: string;
  kind: string;
  attempt: number;
}

/** The span of one attempt of a turn. */
export class AgentSpan {
  private constructor(
    private readonly span: Span,
    readonly trace: TurnTrace,
  ) {}

  static start(tracer: Tracer, turn: TracedTurn): AgentSpan {
    const span = startSpanInTrace(
      tracer,
      `invoke_agent ${AGENT_NAME}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          [OPERATION]: "invoke_agent",
          [PROVIDER]: PROVIDER_NAME,
          "gen_ai.agent.name": AGENT_NAME,
          [CONVERSATION]: turn.sessionId,
          "farm.turn.id": turn.id,
          "farm.turn.kind": turn.kind,
          "farm.turn.attempt": turn.attempt,
          "farm.user.id": turn.userId,
        },
      },
      turn,
    );
    return new AgentSpan(span, { tracer, context: contextWith(span), sessionId: turn.sessionId });
  }

  /** The turn ended in this attempt; a failed turn marks the span as an error. */
  finished(ending: { status: string; stopReason: string | null; error: { code: string } | null }) {
    this.span.setAttribute("farm.turn.status", ending.status);
    if (ending.stopReason) this.span.setAttribute("farm.turn.stop_reason", ending.stopReason);
    if (ending.status === "failed") markError(this.span, ending.error?.code ?? "_OTHER");
  }

  /**
   * Ends the span with what the attempt came to (`completed`, `parked`, `handed_back`, …); an
   * exception (retried by the queue) marks it as an error by its class name.
   */
  end(outcome: string, err?: unknown): void {
    this.span.setAttribute("farm.attempt.outcome", outcome);
    if (err !== undefined) markError(this.span, err instanceof Error ? err.name : "_OTHER");
    this.span.end();
  }
}

/** What a model call is for: a round of the agent loop, or a compaction's summary. */
export interface ChatTrace {
  turn: TurnTrace;
  purpose: "round" | "summary";
}

/** One model call, to a model as configured (`name`) and as its provider knows it (`model`). */
export class ChatSpan {
  private constructor(private readonly span: Span) {}

  static start(
    at: ChatTrace | undefined,
    name: string,
    model: { model: string; baseUrl: string; maxOutputTokens: number },
  ): ChatSpan {
    if (!at) return new ChatSpan(INERT_SPAN);
    const url = new URL(model.baseUrl);
    const attributes: Attributes = {
      [OPERATION]: "chat",
      [PROVIDER]: PROVIDER_NAME,
      "gen_ai.request.model": model.model,
      "gen_ai.request.max_tokens": model.maxOutputTokens,
      "gen_ai.request.stream": true,
      [CONVERSATION]: at.turn.sessionId,
      [ATTR_SERVER_ADDRESS]: url.hostname,
      "farm.model": name,
      "farm.call.purpose": at.purpose,
    };
    if (url.port) attributes[ATTR_SERVER_PORT] = Number(url.port);
    return new ChatSpan(
      at.turn.tracer.startSpan(
        `chat ${model.model}`,
        { kind: SpanKind.CLIENT, attributes },
        at.turn.context,
      ),
    );
  }

  /** The first chunk arrived: time to first chunk, and what the provider says it answers with. */
  firstChunk(seconds: number, chunk: { id?: string; model?: string }): void {
    this.span.setAttribute("gen_ai.response.time_to_first_chunk", seconds);
    if (chunk.id) this.span.setAttribute("gen_ai.response.id", chunk.id);
    if (chunk.model) this.span.setAttribute("gen_ai.response.model", chunk.model);
  }

  succeeded(result: {
    finishReason: string;
    usage: { input_tokens: number; output_tokens: number } | null;
  }): void {
    this.span.setAttribute("gen_ai.response.finish_reasons", [result.finishReason]);
    if (result.usage) {
      this.span.setAttribute("gen_ai.usage.input_tokens", result.usage.input_tokens);
      this.span.setAttribute("gen_ai.usage.output_tokens", result.usage.output_tokens);
    }
    this.span.end();
  }

  failed(errorType: string): void {
    markError(this.span, errorType);
    this.span.end();
  }
}

/**
 * How a tool call came out: `ok`, an `error` the tool returned, `timeout`, `aborted`,
 * `invalid_call` (bad arguments or a tool the turn may not use), or `not_recorded` (the turn was
 * handed back first and the next attempt runs the call).
 */
export type ToolSpanOutcome =
  | "ok"
  | "error"
  | "timeout"
  | "aborted"
  | "invalid_call"
  | "not_recorded";

/** One tool call; `source` is null when the name is not a tool of this turn. */
export class ToolSpan {
  private constructor(private readonly span: Span) {}

  static start(
    at: TurnTrace | undefined,
    call: { id: string; name: string },
    source: string | null,
  ): ToolSpan {
    if (!at) return new ToolSpan(INERT_SPAN);
    const attributes: Attributes = {
      [OPERATION]: "execute_tool",
      "gen_ai.tool.name": call.name,
      "gen_ai.tool.call.id": call.id,
      "gen_ai.tool.type": TOOL_TYPE,
      [CONVERSATION]: at.sessionId,
    };
    if (source) attributes["farm.tool.source"] = source;
    // A span name must stay low-cardinality: a name the model made up is only an attribute.
    const name = source ? `execute_tool ${call.name}` : "execute_tool";
    return new ToolSpan(
      at.tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, at.context),
    );
  }

  end(outcome: ToolSpanOutcome): void {
    this.span.setAttribute("farm.tool.outcome", outcome);
    if (outcome !== "ok" && outcome !== "not_recorded") markError(this.span, outcome);
    this.span.end();
  }
}

/** A span that records nothing, for calls made outside a traced turn. */
const INERT_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

function markError(span: Span, errorType: string): void {
  span.setAttribute(ATTR_ERROR_TYPE, errorType);
  // The code, not the message: messages may quote prompts, tool output or provider replies.
  span.setStatus({ code: SpanStatusCode.ERROR, message: errorType });
}
