/**
 * One model round of a turn: announce it, stream the answer as deltas, retry transient failures
 * (reporting each retry), and record the assembled output.
 *
 * Invariants:
 * - `llm_output` and `token_usage` are emitted once per round (step keys without the attempt),
 *   so a resumed attempt that redoes the round cannot record it twice;
 * - a retry after text was already streamed says `reset_output: true`, and clients discard
 *   the partial text of that round;
 * - waits between retries end at once when the turn is aborted;
 * - a stream cut before or during the answer is a `network` failure, retried with backoff like
 *   a 5xx or a hang; while the endpoint's circuit breaker is open (endpoint-breaker.ts) a try
 *   fails at once with the retryable `circuit_open`, without taking the model's budget;
 * - every call first takes the model's shared budget (model-gate.ts); a provider's 429 holds
 *   the model for every worker and is retried without using up the round's tries, because the
 *   gate bounds how long a rate-limited model can keep the turn (in place, then parked).
 */
import type { ContextMessage } from "../context/message.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { ChatResult, ModelClients, ToolSpec } from "../llm/chat-stream.js";
import { LlmError } from "../llm/llm-error.js";
import { llmMetrics } from "../llm/llm-metrics.js";
import type { TurnTrace } from "../obs/genai-spans.js";
import type { PromptPipeline } from "../prompt/prompt-pipeline.js";
import { ToolCallDeltaFilter } from "../prompt/tool-call-delta-filter.js";
import { type ModelGate, sleep } from "./model-gate.js";
import type { ContextUsage } from "./turn-context.js";

const FIRST_RETRY_DELAY_MS = 500;

export interface ModelStepInput {
  clients: ModelClients;
  gate: ModelGate;
  emitter: TurnEmitter;
  signal: AbortSignal;
  model: string;
  round: number;
  /** The turn's attempt number; it keeps per-attempt step keys apart. */
  attempt: number;
  messages: ContextMessage[];
  tools: readonly ToolSpec[];
  /** Shapes the request for the model's tool protocol and reads its answer back. */
  pipeline: PromptPipeline;
  /** The window's occupancy and the request's projected tokens (turn-context.ts). */
  contextUsage: ContextUsage;
  /** An earlier attempt streamed text for this round that clients must drop. */
  staleDeltas: boolean;
  /** The turn attempt's trace: each try is a span in it. */
  trace?: TurnTrace;
}

export async function runModelStep(input: ModelStepInput): Promise<ChatResult> {
  const { emitter, round, attempt } = input;
  const model = input.clients.config(input.model);
  const maxTries = model.maxRetries + 1;
  let resetNeeded = input.staleDeltas;
  let failures = 0;
  let rateLimits = 0;

  for (let tryNo = 1; ; tryNo++) {
    const stepBase = `r${round}.a${attempt}.t${tryNo}`;
    if (resetNeeded && tryNo === 1) {
      emitter.emit("llm_stream_retry", `${stepBase}.resume`, {
        model_round: round,
        attempt: tryNo,
        max_attempts: maxTries,
        delay_ms: 0,
        reason: "turn_resumed",
        will_retry: true,
        reset_output: true,
      });
      resetNeeded = false;
    }
    const contextTokens = input.contextUsage.projected_request_tokens;
    emitter.emit("context_usage", `${stepBase}.context_usage`, {
      model_round: round,
      ...input.contextUsage,
    });
    // A call the endpoint's open circuit would refuse takes none of the model's shared budget.
    const refused = input.clients.unavailable(input.model);
    const permit = refused ? null : await input.gate.take(input.model, contextTokens, input.signal);
    if (permit) {
      emitter.emit("progress", `${stepBase}.progress`, { stage: "llm_call", model_round: round });
    }

    let streamed = false;
    const show = (text: string) => {
      if (text === "") return;
      streamed = true;
      emitter.delta(text, stepBase, { model_round: round });
    };
    try {
      if (!permit) throw refused;
      const request = input.pipeline.request(input.messages, input.tools);
      // A text-mode model's tool-call blocks are not answer text: they never reach clients.
      const filter = input.pipeline.protocol === "text" ? new ToolCallDeltaFilter() : null;
      const streamedResult = await input.clients.stream(input.model, {
        messages: request.messages,
        tools: request.tools,
        signal: input.signal,
        onDelta: (text) => show(filter ? filter.push(text) : text),
        trace: input.trace && { turn: input.trace, purpose: "round" },
      });
      const result = input.pipeline.answer(streamedResult);
      if (filter) show(filter.end(result.toolCalls.length > 0));
      // Without reported usage the estimate stands (and the call still counts as through).
      await permit.release(result.usage?.total_tokens ?? contextTokens);
      recordOutput(emitter, round, result);
      return result;
    } catch (err) {
      // The call's own error matters more than a failed give-back (the slot expires anyway).
      await permit?.release().catch(() => undefined);
      const error = err instanceof LlmError ? err : new LlmError("network", String(err));
      const rateLimited = error.kind === "rate_limited";
      // A 429 holds the model for every worker: the provider's Retry-After in full, else our
      // own growing backoff. The turn then waits at the gate, which bounds the wait.
      const holdMs = rateLimited
        ? Math.max(
            error.retryAfterMs ?? 0,
            retryDelayMs(++rateLimits, error, model.maxRetryDelayMs),
          )
        : 0;
      if (rateLimited) await input.gate.coolDown(input.model, holdMs);
      else failures++;
      const willRetry =
        error.retryable && (rateLimited || failures < maxTries) && !input.signal.aborted;
      const delayMs = !willRetry
        ? 0
        : rateLimited
          ? holdMs
          : retryDelayMs(failures, error, model.maxRetryDelayMs);
      if (error.kind !== "aborted") {
        emitter.emit("llm_stream_retry", `${stepBase}.retry`, {
          model_round: round,
          attempt: tryNo,
          max_attempts: maxTries,
          delay_ms: delayMs,
          reason: error.kind,
          error: error.message,
          will_retry: willRetry,
          reset_output: streamed,
        });
      }
      if (!willRetry) throw error;
      llmMetrics.retry(input.model, error.kind);
      if (!rateLimited) await sleep(delayMs, input.signal);
    }
  }
}

function recordOutput(emitter: TurnEmitter, round: number, result: ChatResult): void {
  emitter.emit("llm_output", `r${round}.llm_output`, {
    model_round: round,
    content: result.content,
    tool_calls: result.toolCalls,
    finish_reason: result.finishReason,
    usage: result.usage,
  });
  if (result.usage) {
    emitter.emit("token_usage", `r${round}.token_usage`, { model_round: round, ...result.usage });
  }
}

/** Exponential backoff with jitter; a provider's Retry-After is honoured up to the cap. */
export function retryDelayMs(tryNo: number, error: LlmError, capMs: number): number {
  const exponential = FIRST_RETRY_DELAY_MS * 2 ** (tryNo - 1);
  const jittered = exponential / 2 + Math.random() * (exponential / 2);
  return Math.min(capMs, Math.max(jittered, error.retryAfterMs ?? 0));
}
