/**
 * Validates a `POST /v1/chat/completions` body and flattens it into the few fields the simulator
 * reads. Anything a real provider would reject with 400 is reported as a `RequestProblem`.
 *
 * A request without native `tools` whose system prompt lists tools in a `<tools>` block is in
 * wunder's text tool-call protocol (`toolProtocol: "text"`): text-protocol.ts takes the tool
 * names from that block and turns its `<tool_call>` blocks and `tool_response:` messages into
 * the `toolCalls` and `tool` messages a native request would carry, so the script never sees
 * the difference.
 *
 * Invariants:
 * - a parsed request has at least one message, every message has a known role and a string
 *   content (content parts are joined; `null` becomes ""), and tool names are unique;
 * - a native request (any `tools`, or no `<tools>` block) keeps its messages as sent;
 * - `toolsJson` is the native `tools` array only: a text-protocol tool list is counted as the
 *   content of its system message.
 */
import { fromTextProtocol } from "./text-protocol.js";

export const DEFAULT_MODEL_ID = "farm-sim-1";

export interface SimToolCall {
  id: string;
  name: string;
  arguments: string;
}

export type SimRole = "system" | "user" | "assistant" | "tool";

export interface SimMessage {
  role: SimRole;
  content: string;
  toolCalls: SimToolCall[];
  toolCallId: string | undefined;
  /**
   * The content as sent, when the text protocol rewrote the message (its calls taken out of
   * `content`, or its `tool_response: ` prefix dropped); prompt tokens count this instead.
   */
  sentContent?: string;
}

/** How the request offers tools: a `tools` array, or wunder's text protocol in the prompt. */
export type ToolProtocol = "native" | "text";

export interface ChatRequest {
  model: string;
  messages: SimMessage[];
  toolNames: ReadonlySet<string>;
  /**
   * The `tools` array as compact JSON ("" without tools): specs count against the context
   * window like messages do.
   */
  toolsJson: string;
  /** "text": tool calls are read from and written as `<tool_call>` blocks (text-protocol.ts). */
  toolProtocol: ToolProtocol;
  stream: boolean;
  includeUsage: boolean;
}

export interface RequestProblem {
  message: string;
  param: string | null;
}

// "developer" is the newer name of "system"; "function" the legacy name of "tool".
const ROLES: Record<string, SimRole> = {
  system: "system",
  developer: "system",
  user: "user",
  assistant: "assistant",
  tool: "tool",
  function: "tool",
};

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json =>
  v !== null && typeof v === "object" && !Array.isArray(v);

export function parseChatRequest(body: string): ChatRequest | RequestProblem {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    return {
      message: "We could not parse the JSON body of your request. The body must be valid JSON.",
      param: null,
    };
  }
  if (!isObject(raw)) return { message: "The request body must be a JSON object.", param: null };
  if (!Array.isArray(raw.messages)) {
    return { message: "Missing required parameter: 'messages'.", param: "messages" };
  }
  if (raw.messages.length === 0) {
    return { message: "'messages' must contain at least one message.", param: "messages" };
  }
  const messages: SimMessage[] = [];
  for (const [i, m] of raw.messages.entries()) {
    const message = parseMessage(m);
    if (typeof message === "string") return { message, param: `messages[${i}]` };
    messages.push(message);
  }
  const tools = Array.isArray(raw.tools) ? raw.tools : [];
  const toolNames = new Set<string>();
  for (const tool of tools) {
    const name = isObject(tool) && isObject(tool.function) ? tool.function.name : undefined;
    if (typeof name === "string") toolNames.add(name);
  }
  const text = tools.length === 0 ? fromTextProtocol(messages) : undefined;
  return {
    model: typeof raw.model === "string" && raw.model !== "" ? raw.model : DEFAULT_MODEL_ID,
    messages: text?.messages ?? messages,
    toolNames: text?.toolNames ?? toolNames,
    toolsJson: tools.length > 0 ? JSON.stringify(tools) : "",
    toolProtocol: text ? "text" : "native",
    stream: raw.stream === true,
    includeUsage: isObject(raw.stream_options) && raw.stream_options.include_usage === true,
  };
}

export function isRequestProblem(v: ChatRequest | RequestProblem): v is RequestProblem {
  return "message" in v;
}

/** The message, or why it is invalid. */
function parseMessage(m: unknown): SimMessage | string {
  if (!isObject(m)) return "Each message must be an object.";
  const role = typeof m.role === "string" ? ROLES[m.role] : undefined;
  if (role === undefined) return `Invalid value for 'role': ${JSON.stringify(m.role)}.`;
  const content = contentText(m.content);
  if (content === undefined) return "Invalid type for 'content': expected a string or an array.";
  const toolCalls = Array.isArray(m.tool_calls) ? m.tool_calls.map(parseToolCall) : [];
  const toolCallId = typeof m.tool_call_id === "string" ? m.tool_call_id : undefined;
  return { role, content, toolCalls, toolCallId };
}

function contentText(content: unknown): string | undefined {
  if (typeof content === "string") return content;
  if (content === null || content === undefined) return "";
  if (!Array.isArray(content)) return undefined;
  // Non-text parts (images, audio) carry nothing the script reacts to.
  return content
    .map((part) => (isObject(part) && typeof part.text === "string" ? part.text : ""))
    .join("");
}

function parseToolCall(call: unknown): SimToolCall {
  const fn = isObject(call) && isObject(call.function) ? call.function : {};
  return {
    id: isObject(call) && typeof call.id === "string" ? call.id : "",
    name: typeof fn.name === "string" ? fn.name : "",
    arguments: typeof fn.arguments === "string" ? fn.arguments : "",
  };
}
