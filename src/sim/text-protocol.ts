/**
 * The simulator's side of wunder's text tool-call protocol (src/prompt/text-tool-render.ts,
 * text-tool-protocol.ts), for farm models without native function calling: reading a text-mode
 * request into the shape the script understands, and writing the script's tool calls back as
 * text.
 *
 * A request is in text protocol when it has no native `tools` and a system message holds a
 * `<tools>` block: a line that is exactly `<tools>` (surrounding whitespace aside), one JSON
 * object per line, then a line `</tools>`. The tool names come from those lines (`{"name": ..}`
 * or the OpenAI shape `{"function": {"name": ..}}`); a line that does not parse, or names no
 * tool, is skipped. An inline `<tools></tools>` (as in the prompt's prose) is not a block.
 *
 * Invariants:
 * - pure and total: never throws; equal messages give equal output, same call ids included;
 * - only messages in text-protocol form change, everything else is returned as it came:
 *   - an assistant message without native `tool_calls` whose content holds `<tool_call>` blocks
 *     that parseTextToolCalls reads gets those calls as `toolCalls` (ids
 *     `call_text_<message index>_<call index>`) and the text around them as `content`;
 *   - the run of user messages starting with TOOL_RESPONSE_PREFIX right after such an assistant
 *     message become `tool` messages, the k-th answering the k-th call (`toolCallId`), with the
 *     prefix removed from `content`; responses beyond the calls stay user messages;
 * - a rewritten message keeps its text as sent in `sentContent`, so prompt tokens count what the
 *   provider received (tokens.ts), not the rewrite;
 * - textToolCallPieces(calls).join("") is renderToolCall of each call, joined by "\n", which
 *   parseTextToolCalls reads back as the same calls, in order.
 */
import { parseTextToolCalls } from "../prompt/text-tool-protocol.js";
import {
  renderToolCall,
  TOOL_CALL_STOP,
  TOOL_RESPONSE_PREFIX,
} from "../prompt/text-tool-render.js";
import type { SimMessage, SimToolCall } from "./request.js";
import { argumentFragments } from "./tokens.js";

export interface TextProtocolRequest {
  toolNames: Set<string>;
  messages: SimMessage[];
}

const TOOLS_OPEN = "<tools>";
const TOOLS_CLOSE = "</tools>";
const CALL_OPEN = "<tool_call>\n";
const CALL_CLOSE = `\n${TOOL_CALL_STOP}`;

/** The request read in text protocol, or undefined when no system message has a tools block. */
export function fromTextProtocol(messages: readonly SimMessage[]): TextProtocolRequest | undefined {
  const toolNames = toolsBlockNames(messages);
  if (toolNames === undefined) return undefined;
  const converted: SimMessage[] = [];
  // The calls of the assistant message just before, not yet answered by a tool_response.
  let pending: SimToolCall[] = [];
  for (const [i, m] of messages.entries()) {
    if (m.role === "assistant") {
      const withCalls = assistantWithCalls(m, i);
      converted.push(withCalls ?? m);
      pending = withCalls ? [...withCalls.toolCalls] : [];
      continue;
    }
    const call =
      m.role === "user" && m.content.startsWith(TOOL_RESPONSE_PREFIX) ? pending.shift() : undefined;
    if (call === undefined) {
      pending = [];
      converted.push(m);
      continue;
    }
    converted.push({
      role: "tool",
      content: m.content.slice(TOOL_RESPONSE_PREFIX.length),
      toolCalls: [],
      toolCallId: call.id,
      sentContent: m.content,
    });
  }
  return { toolNames, messages: converted };
}

/** The names listed in the system messages' `<tools>` blocks; undefined without a block. */
function toolsBlockNames(messages: readonly SimMessage[]): Set<string> | undefined {
  let names: Set<string> | undefined;
  for (const m of messages) {
    if (m.role !== "system" || !m.content.includes(TOOLS_OPEN)) continue;
    const lines = m.content.split("\n").map((line) => line.trim());
    let inBlock = false;
    let block: string[] = [];
    for (const line of lines) {
      if (!inBlock) {
        inBlock = line === TOOLS_OPEN;
        block = [];
      } else if (line === TOOLS_CLOSE) {
        inBlock = false;
        names ??= new Set();
        for (const entry of block) {
          const name = toolName(entry);
          if (name !== undefined) names.add(name);
        }
      } else {
        block.push(line);
      }
    }
  }
  return names;
}

/** The tool name of one `<tools>` line, or undefined when the line is not a tool. */
function toolName(line: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const name = isObject(value.function) ? value.function.name : value.name;
  return typeof name === "string" && name !== "" ? name : undefined;
}

/** The assistant message with its `<tool_call>` blocks read as calls; undefined if none. */
function assistantWithCalls(m: SimMessage, index: number): SimMessage | undefined {
  if (m.toolCalls.length > 0) return undefined;
  const parsed = parseTextToolCalls(m.content);
  if (parsed.calls.length === 0) return undefined;
  return {
    ...m,
    content: parsed.content,
    toolCalls: parsed.calls.map((call, k) => ({
      id: `call_text_${index}_${k}`,
      name: call.name,
      arguments: call.arguments,
    })),
    sentContent: m.content,
  };
}

/**
 * The streamed tokens of tool calls written as text: per call, its opening tag (after a "\n"
 * separating it from the previous block), its JSON line in fragments as native arguments are
 * streamed, and its closing tag.
 */
export function textToolCallPieces(calls: readonly SimToolCall[]): string[] {
  return calls.flatMap((call, k) => {
    const block = renderToolCall({ name: call.name, arguments: call.arguments });
    const separator = k === 0 ? "" : "\n";
    if (!block.startsWith(CALL_OPEN) || !block.endsWith(CALL_CLOSE)) return [separator + block];
    const json = block.slice(CALL_OPEN.length, block.length - CALL_CLOSE.length);
    return [separator + CALL_OPEN, ...argumentFragments(json), CALL_CLOSE];
  });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}
