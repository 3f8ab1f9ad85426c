/**
 * Turns a scripted reply into OpenAI wire text: one `chat.completion` JSON, or the SSE stream of
 * `chat.completion.chunk`s cut into timed groups.
 *
 * Invariants:
 * - a stream has one group per completion token: group 0 opens with the `role` delta and is sent
 *   after the time to first token, each later group after one token delay; the finish chunk, the
 *   optional usage chunk and `[DONE]` ride with the last group;
 * - `usage.completion_tokens` equals the number of groups, so usage and timing agree;
 * - several tool calls stream one after another, each opening with its index, id and name (one
 *   token) followed by its argument fragments, as OpenAI streams parallel tool calls;
 * - for a text-protocol request (request.ts) tool calls are no native `tool_calls`: they go out
 *   as assistant content, one `renderToolCall` block per call joined by "\n", with
 *   finish_reason "stop", streamed as content deltas (each tag one token, the JSON line in
 *   fragments like native arguments; text-protocol.ts);
 * - the content sent, streamed or not, is the concatenation of the streamed tokens.
 */
import type { SimToolCall, ToolProtocol } from "./request.js";
import type { Reply } from "./script.js";
import { textToolCallPieces } from "./text-protocol.js";
import { argumentFragments, textPieces } from "./tokens.js";

export interface Completion {
  id: string;
  created: number;
  model: string;
  reply: Reply;
  toolProtocol: ToolProtocol;
  promptTokens: number;
}

const FINGERPRINT = "fp_sim";

/** What goes on the wire: content in its streamed tokens, or native tool calls. */
type Wire =
  | { kind: "content"; pieces: string[] }
  | { kind: "tool_calls"; calls: readonly SimToolCall[] };

function wireOf({ reply, toolProtocol }: Completion): Wire {
  if (reply.kind === "text") return { kind: "content", pieces: textPieces(reply.text) };
  if (toolProtocol === "text") return { kind: "content", pieces: textToolCallPieces(reply.calls) };
  return { kind: "tool_calls", calls: reply.calls };
}

/** The number of streamed chunks of the reply, at least one. */
function wireTokens(wire: Wire): number {
  if (wire.kind === "content") return Math.max(1, wire.pieces.length);
  // Each call's name counts as its first token, its argument fragments as the rest.
  const tokens = wire.calls.reduce(
    (n, call) => n + 1 + argumentFragments(call.arguments).length,
    0,
  );
  return Math.max(1, tokens);
}

export function completionTokens(c: Completion): number {
  return wireTokens(wireOf(c));
}

function usage(c: Completion, wire: Wire) {
  const completion = wireTokens(wire);
  return {
    prompt_tokens: c.promptTokens,
    completion_tokens: completion,
    total_tokens: c.promptTokens + completion,
  };
}

const finishReason = (wire: Wire) => (wire.kind === "content" ? "stop" : "tool_calls");

export function completionJson(c: Completion): string {
  const wire = wireOf(c);
  const message =
    wire.kind === "content"
      ? { role: "assistant", content: wire.pieces.join(""), refusal: null }
      : {
          role: "assistant",
          content: null,
          refusal: null,
          tool_calls: wire.calls.map((call) => ({
            id: call.id,
            type: "function",
            function: { name: call.name, arguments: call.arguments },
          })),
        };
  return JSON.stringify({
    id: c.id,
    object: "chat.completion",
    created: c.created,
    model: c.model,
    system_fingerprint: FINGERPRINT,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(wire) }],
    usage: usage(c, wire),
  });
}

export function streamGroups(c: Completion, includeUsage: boolean): string[] {
  // Every chunk shares this head; building it once keeps per-token work to one small stringify.
  const head = `data: {"id":${JSON.stringify(c.id)},"object":"chat.completion.chunk","created":${c.created},"model":${JSON.stringify(c.model)},"system_fingerprint":"${FINGERPRINT}","choices":`;
  const chunk = (delta: object, finish: string | null = null) =>
    `${head}[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`;

  const wire = wireOf(c);
  const groups: string[] = [];
  if (wire.kind === "content") {
    const [first = "", ...rest] = wire.pieces;
    groups.push(
      chunk({ role: "assistant", content: "" }) + (first ? chunk({ content: first }) : ""),
    );
    for (const token of rest) groups.push(chunk({ content: token }));
  } else {
    for (const [index, { id, name, arguments: args }] of wire.calls.entries()) {
      const opening = { index, id, type: "function", function: { name, arguments: "" } };
      groups.push(
        chunk(
          index === 0
            ? { role: "assistant", content: null, tool_calls: [opening] }
            : { tool_calls: [opening] },
        ),
      );
      for (const fragment of argumentFragments(args)) {
        groups.push(chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }));
      }
    }
  }
  let tail = chunk({}, finishReason(wire));
  if (includeUsage) tail += `${head}[],"usage":${JSON.stringify(usage(c, wire))}}\n\n`;
  tail += "data: [DONE]\n\n";
  groups[groups.length - 1] += tail;
  return groups;
}
