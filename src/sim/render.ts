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
 *   token) followed by its argument fragments, as OpenAI streams parallel tool calls.
 */
import type { Reply } from "./script.js";
import { argumentFragments, textPieces } from "./tokens.js";

export interface Completion {
  id: string;
  created: number;
  model: string;
  reply: Reply;
  promptTokens: number;
}

const FINGERPRINT = "fp_sim";

/** The tokens of the reply, each one streamed chunk. */
function replyTokens(reply: Reply): string[] {
  if (reply.kind === "text") return textPieces(reply.text);
  // Each call's name counts as its first token, its argument fragments as the rest.
  return reply.calls.flatMap((call) => ["", ...argumentFragments(call.arguments)]);
}

export function completionTokens(reply: Reply): number {
  return Math.max(1, replyTokens(reply).length);
}

function usage(c: Completion) {
  const completion = completionTokens(c.reply);
  return {
    prompt_tokens: c.promptTokens,
    completion_tokens: completion,
    total_tokens: c.promptTokens + completion,
  };
}

const finishReason = (reply: Reply) => (reply.kind === "text" ? "stop" : "tool_calls");

export function completionJson(c: Completion): string {
  const { reply } = c;
  const message =
    reply.kind === "text"
      ? { role: "assistant", content: reply.text, refusal: null }
      : {
          role: "assistant",
          content: null,
          refusal: null,
          tool_calls: reply.calls.map((call) => ({
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
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(reply) }],
    usage: usage(c),
  });
}

export function streamGroups(c: Completion, includeUsage: boolean): string[] {
  // Every chunk shares this head; building it once keeps per-token work to one small stringify.
  const head = `data: {"id":${JSON.stringify(c.id)},"object":"chat.completion.chunk","created":${c.created},"model":${JSON.stringify(c.model)},"system_fingerprint":"${FINGERPRINT}","choices":`;
  const chunk = (delta: object, finish: string | null = null) =>
    `${head}[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`;

  const { reply } = c;
  const groups: string[] = [];
  if (reply.kind === "text") {
    const [first = "", ...rest] = textPieces(reply.text);
    groups.push(
      chunk({ role: "assistant", content: "" }) + (first ? chunk({ content: first }) : ""),
    );
    for (const token of rest) groups.push(chunk({ content: token }));
  } else {
    for (const [index, { id, name, arguments: args }] of reply.calls.entries()) {
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
  let tail = chunk({}, finishReason(reply));
  if (includeUsage) tail += `${head}[],"usage":${JSON.stringify(usage(c))}}\n\n`;
  tail += "data: [DONE]\n\n";
  groups[groups.length - 1] += tail;
  return groups;
}
