/**
 * Rendering side of wunder's text tool-call protocol (`tool_call_mode: tool_call`): the
 * system-prompt section listing the tools, one call as the model should write it, and the
 * user message that carries a tool result. The parser is text-tool-protocol.ts.
 *
 * Invariants:
 * - deterministic: equal inputs give the same text (tools keep their order, object keys are
 *   sorted), so a rendered prompt can be cached by its inputs;
 * - what renderToolCall writes, parseTextToolCalls reads back as the same call;
 * - no JSON string in a rendered line can close a tag (`</` is written `<\/`).
 */
import type { ToolSpec } from "../llm/chat-stream.js";
import { isPlainObject, tryJson } from "./text-scan.js";
import type { TextToolCall } from "./text-tool-protocol.js";

/** Recommended stop sequence for a model in text mode (wunder's default). */
export const TOOL_CALL_STOP = "</tool_call>";
/** The prefix of a user message that carries a tool result. */
export const TOOL_RESPONSE_PREFIX = "tool_response: ";

/**
 * The system-prompt section that lists `specs` and explains the protocol; "" without tools.
 * Deterministic: tools keep their given order, every object's keys are sorted, so equal specs
 * always give the same text (it can be cached by its inputs).
 */
export function renderToolsPrompt(specs: readonly ToolSpec[]): string {
  if (specs.length === 0) return "";
  const lines = specs.map((spec) =>
    jsonLine({
      name: spec.function.name,
      description: spec.function.description,
      parameters: canonical(spec.function.parameters ?? {}),
    }),
  );
  return [
    "# Tools",
    "",
    "You can call tools. Their signatures are inside the <tools></tools> tags, one JSON object per line: the tool's name, its description and the JSON Schema of its arguments.",
    "<tools>",
    ...lines,
    "</tools>",
    "",
    'To call a tool, write a tool_call block like the one below. It holds one JSON object with two keys: "name" (the tool\'s name) and "arguments" (an object that matches the tool\'s parameters).',
    "<tool_call>",
    '{"name": "tool_name", "arguments": {"argument_name": "value"}}',
    "</tool_call>",
    "Write one block per call. To call several tools, write several blocks one after another. After your last block, stop and wait for the results.",
    `Each result comes back as a user message that starts with "${TOOL_RESPONSE_PREFIX}".`,
  ].join("\n");
}

/**
 * One call in the protocol's own format, as the model should have written it (for the
 * assistant messages of a text-mode history). Arguments that are a JSON object are written as
 * an object, anything else as a string; either way parseTextToolCalls reads the call back.
 */
export function renderToolCall(call: TextToolCall): string {
  const parsed = tryJson(call.arguments);
  const args = parsed.ok && isPlainObject(parsed.value) ? parsed.value : call.arguments;
  return `<tool_call>\n${jsonLine({ name: call.name, arguments: args })}\n${TOOL_CALL_STOP}`;
}

/**
 * The user-message text that returns one tool result, wunder's format `tool_response: <text>`.
 * The name is not repeated in the text: wunder's observation (the tool's result payload) names
 * the tool itself, so a caller that runs several calls per reply should keep it in there.
 */
export function renderToolResponse(_toolName: string, observation: string): string {
  return `${TOOL_RESPONSE_PREFIX}${observation}`;
}

/** Compact JSON with `</` written as `<\/`, so no string in it can close a tag. */
function jsonLine(value: unknown): string {
  return JSON.stringify(value).replaceAll("</", "<\\/");
}

/** The value with every object's keys sorted (arrays keep their order). */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (!isPlainObject(value)) return value;
  const keys = Object.keys(value).sort();
  return Object.fromEntries(keys.map((key) => [key, canonical(value[key])]));
}
