/**
 * One streamed chat-completions call to an OpenAI-compatible endpoint, and the clients for the
 * configured models.
 *
 * Invariants:
 * - a call ends within `requestTimeoutMs` overall and `idleTimeoutMs` between chunks; both end
 *   as a retryable `timeout` LlmError, while an abort of the caller's signal ends as `aborted`;
 * - every model shares one keep-alive connection pool per origin (see transport.ts);
 * - the SDK does not retry on its own: the turn loop owns retries (it reports them as events);
 * - every call goes through its endpoint's circuit breaker (endpoint-breaker.ts): while the
 *   endpoint keeps failing, calls fail at once with a retryable `circuit_open` LlmError;
 * - a call made for a traced turn is one `chat <model>` span (genai-spans.ts), ended once.
 */
import OpenAI from "openai";
import type { ModelConfig } from "../config/schema.js";
import type { ContextMessage, ToolCall } from "../context/message.js";
import { ChatSpan, type ChatTrace } from "../obs/genai-spans.js";
import {
  type EndpointBreaker,
  type EndpointBreakers,
  endpointBreakers,
} from "./endpoint-breaker.js";
import { classifyLlmError, LlmError } from "./llm-error.js";
import { llmMetrics } from "./llm-metrics.js";
import { ModelTransport } from "./transport.js";

export interface ToolSpec {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
}

export interface ChatUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export interface ChatResult {
  content: string;
  toolCalls: ToolCall[];
  finishReason: string;
  usage: ChatUsage | null;
}

export interface ChatRequest {
  messages: ContextMessage[];
  tools: ToolSpec[];
  signal: AbortSignal;
  /** Called with each piece of streamed answer text, in order. */
  onDelta(text: string): void;
  /** The turn the call belongs to, for its span; untraced without it. */
  trace?: ChatTrace;
}

export class ModelClients {
  private readonly transport = new ModelTransport();
  private readonly clients = new Map<string, OpenAI>();
  private readonly breakers = new Map<string, EndpointBreaker>();

  constructor(
    private readonly models: Record<string, ModelConfig>,
    /** The process's breakers by default; a test may pass its own. */
    private readonly endpoints: EndpointBreakers = endpointBreakers,
  ) {}

  config(name: string): ModelConfig {
    const model = Object.hasOwn(this.models, name) ? this.models[name] : undefined;
    if (!model) throw new Error(`unknown model "${name}"`);
    return model;
  }

  /**
   * The `circuit_open` error a call to the model would fail with right now, or null: lets a
   * caller skip taking the model's shared budget for a call that cannot go out.
   */
  unavailable(modelName: string): LlmError | null {
    return this.breaker(modelName, this.config(modelName)).openError();
  }

  /** Streams one completion; resolves with the assembled answer or rejects with an LlmError. */
  async stream(modelName: string, request: ChatRequest): Promise<ChatResult> {
    const model = this.config(modelName);
    if (request.signal.aborted) throw new LlmError("aborted", "request aborted");
    const span = ChatSpan.start(request.trace, modelName, model);
    try {
      const result = await this.breaker(modelName, model).run(() =>
        this.streamOnce(modelName, model, request, span),
      );
      span.succeeded(result);
      return result;
    } catch (err) {
      span.failed(err instanceof LlmError ? err.kind : "_OTHER");
      throw err;
    }
  }

  private async streamOnce(
    modelName: string,
    model: ModelConfig,
    request: ChatRequest,
    span: ChatSpan,
  ): Promise<ChatResult> {
    const client = this.client(modelName, model);
    const call = new AbortController();
    let timedOut: string | null = null;
    const expire = (why: string) => () => {
      timedOut = why;
      call.abort();
    };
    const onCallerAbort = () => call.abort();
    request.signal.addEventListener("abort", onCallerAbort, { once: true });
    const overall = setTimeout(
      expire(`no complete answer within ${model.requestTimeoutMs} ms`),
      model.requestTimeoutMs,
    );
    let idle = setTimeout(expire(`no data for ${model.idleTimeoutMs} ms`), model.idleTimeoutMs);
    const started = performance.now();
    const elapsedS = () => (performance.now() - started) / 1000;
    try {
      if (request.signal.aborted) throw new LlmError("aborted", "request aborted");
      const stream = await client.chat.completions.create(
        {
          model: model.model,
          messages: request.messages.map(toWireMessage),
          ...(request.tools.length > 0 ? { tools: request.tools } : {}),
          max_tokens: model.maxOutputTokens,
          stream: true,
          stream_options: { include_usage: true },
        },
        { signal: call.signal, maxRetries: 0, timeout: model.requestTimeoutMs },
      );
      const assembly = new StreamAssembly();
      let first = true;
      for await (const chunk of stream) {
        if (first) {
          first = false;
          llmMetrics.firstChunk(modelName, elapsedS());
          span.firstChunk(elapsedS(), chunk);
        }
        clearTimeout(idle);
        idle = setTimeout(expire(`no data for ${model.idleTimeoutMs} ms`), model.idleTimeoutMs);
        const text = assembly.add(chunk);
        if (text) request.onDelta(text);
      }
      // An aborted stream may end quietly instead of throwing; its partial answer is no answer.
      if (call.signal.aborted) throw new LlmError("aborted", "request aborted");
      const result = assembly.result();
      llmMetrics.call(modelName, elapsedS(), "");
      if (result.usage) llmMetrics.tokens(modelName, result.usage);
      return result;
    } catch (err) {
      const error = timedOut
        ? new LlmError("timeout", `model call timed out: ${timedOut}`)
        : request.signal.aborted
          ? new LlmError("aborted", "request aborted")
          : classifyLlmError(err);
      llmMetrics.call(modelName, elapsedS(), error.kind);
      throw error;
    } finally {
      clearTimeout(overall);
      clearTimeout(idle);
      request.signal.removeEventListener("abort", onCallerAbort);
    }
  }

  async close(): Promise<void> {
    for (const breaker of this.breakers.values()) this.endpoints.release(breaker);
    this.breakers.clear();
    await this.transport.close();
  }

  private breaker(name: string, model: ModelConfig): EndpointBreaker {
    let breaker = this.breakers.get(name);
    if (!breaker) {
      breaker = this.endpoints.acquire(model.baseUrl, {
        threshold: model.breakerThreshold,
        halfOpenAfterMs: model.breakerHalfOpenAfterMs,
      });
      this.breakers.set(name, breaker);
    }
    return breaker;
  }

  private client(name: string, model: ModelConfig): OpenAI {
    let client = this.clients.get(name);
    if (!client) {
      client = new OpenAI({
        baseURL: model.baseUrl,
        apiKey: model.apiKey || "none",
        maxRetries: 0,
        timeout: model.requestTimeoutMs,
        fetch: this.transport.fetch as unknown as typeof fetch,
      });
      this.clients.set(name, client);
    }
    return client;
  }
}

/** Collects streamed chunks into one answer: text, tool calls by index, finish reason, usage. */
class StreamAssembly {
  private content = "";
  private finishReason = "";
  private usage: ChatUsage | null = null;
  private readonly calls: { id: string; name: string; arguments: string }[] = [];
  private chunks = 0;

  /** Returns the text delta carried by the chunk, if any. */
  add(chunk: OpenAI.Chat.Completions.ChatCompletionChunk): string {
    this.chunks++;
    if (chunk.usage) {
      this.usage = {
        input_tokens: chunk.usage.prompt_tokens,
        output_tokens: chunk.usage.completion_tokens,
        total_tokens: chunk.usage.total_tokens,
      };
    }
    const choice = chunk.choices[0];
    if (!choice) return "";
    if (choice.finish_reason) this.finishReason = choice.finish_reason;
    for (const part of choice.delta.tool_calls ?? []) {
      let call = this.calls[part.index];
      if (!call) {
        call = { id: "", name: "", arguments: "" };
        this.calls[part.index] = call;
      }
      if (part.id) call.id = part.id;
      if (part.function?.name) call.name += part.function.name;
      if (part.function?.arguments) call.arguments += part.function.arguments;
    }
    const text = choice.delta.content ?? "";
    this.content += text;
    return text;
  }

  result(): ChatResult {
    const seen = new Set<string>();
    const toolCalls = this.calls
      .filter((c) => c !== undefined && c.name !== "")
      .map((c, i) => {
        // Events, results and resume are keyed by call id: a missing or repeated id (some
        // providers send `call_0` twice) gets one of its own.
        let id = c.id || `call_missing_${i}`;
        if (seen.has(id)) id = `${id}_${i}`;
        seen.add(id);
        return { id, name: c.name, arguments: c.arguments };
      });
    if (
      this.chunks === 0 ||
      (this.content === "" && toolCalls.length === 0 && !this.finishReason)
    ) {
      throw new LlmError("empty_response", "model stream ended without an answer");
    }
    return {
      content: this.content,
      toolCalls,
      finishReason: this.finishReason || "stop",
      usage: this.usage,
    };
  }
}

function toWireMessage(
  message: ContextMessage,
): OpenAI.Chat.Completions.ChatCompletionMessageParam {
  // The summary marker is ours; providers get the plain user message.
  if (message.role === "user") return { role: "user", content: message.content };
  if (message.role !== "assistant") return message;
  if (!message.tool_calls?.length) return { role: "assistant", content: message.content };
  return {
    role: "assistant",
    content: message.content,
    tool_calls: message.tool_calls.map((c) => ({
      id: c.id,
      type: "function" as const,
      function: { name: c.name, arguments: c.arguments },
    })),
  };
}
