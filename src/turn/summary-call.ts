/**
 * The model call a compaction makes for its hand-off summary: through the model's shared budget
 * (model-gate.ts) like any call, without tools, nothing streamed to clients.
 *
 * Invariants:
 * - the budget permit is always given back, with the tokens the provider reported when it did;
 * - errors are the call's own (LlmError, or ModelDeferral when the budget is not back soon):
 *   the compactor decides which of them mean "fall back" and which stop the compaction.
 */
import type { ContextMessage } from "../context/message.js";
import { countPromptTokens } from "../context/token-count.js";
import type { ChatUsage, ModelClients } from "../llm/chat-stream.js";
import type { TurnTrace } from "../obs/genai-spans.js";
import type { ModelGate } from "./model-gate.js";

export interface SummaryAnswer {
  content: string;
  usage: ChatUsage | null;
}

export async function callSummaryModel(
  deps: {
    model: string;
    clients: ModelClients;
    gate: ModelGate;
    signal: AbortSignal;
    trace?: TurnTrace;
  },
  request: ContextMessage[],
): Promise<SummaryAnswer> {
  const tokens = countPromptTokens(request);
  const permit = await deps.gate.take(deps.model, tokens, deps.signal);
  try {
    const result = await deps.clients.stream(deps.model, {
      messages: request,
      tools: [],
      signal: deps.signal,
      onDelta: () => undefined,
      trace: deps.trace && { turn: deps.trace, purpose: "summary" },
    });
    await permit.release(result.usage?.total_tokens ?? tokens);
    return { content: result.content, usage: result.usage };
  } catch (err) {
    await permit.release().catch(() => undefined);
    throw err;
  }
}
