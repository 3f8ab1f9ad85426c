/**
 * The last step before a model call: turns the context (system prompt, history, new input, all
 * as typed items) and the turn's tool specs into the request a model of either tool protocol
 * takes, and reads its answer back into the same typed shape.
 *
 * - `native`: OpenAI function calling; the request is the context as it is, with `tools`;
 * - `text`: wunder's `<tool_call>` protocol for models without function calling: the tool specs
 *   are rendered into the system message, earlier calls are written as `<tool_call>` blocks in
 *   the assistant's text, results go back as `tool_response:` user messages, and the answer's
 *   blocks are parsed into tool calls (text-tool-protocol.ts).
 *
 * Invariants:
 * - the context itself is never changed: history and events keep the typed items, whatever the
 *   protocol, so a session can switch models between turns;
 * - what is stable is rendered once: the tools section per spec list and each history item's
 *   text form per item (both held weakly: they go when their inputs go);
 * - a text-mode answer's calls get fresh ids, recorded with the answer (`llm_output`), so a
 *   resumed turn replays the same ids.
 */
import { randomUUID } from "node:crypto";
import type { ContextMessage } from "../context/message.js";
import type { ChatResult, ToolSpec } from "../llm/chat-stream.js";
import { parseTextToolCalls } from "./text-tool-protocol.js";
import { renderToolCall, renderToolResponse, renderToolsPrompt } from "./text-tool-render.js";

export const TOOL_PROTOCOLS = ["native", "text"] as const;
export type ToolProtocol = (typeof TOOL_PROTOCOLS)[number];

export interface ModelRequest {
  messages: ContextMessage[];
  tools: ToolSpec[];
}

/** The tools section of the system message, per spec list (a new tool set is a new list). */
const toolsSections = new WeakMap<readonly ToolSpec[], string>();
/** Each history item in text form: an assistant's calls as blocks, a result as a user message. */
const textItems = new WeakMap<ContextMessage, ContextMessage>();

export class PromptPipeline {
  constructor(readonly protocol: ToolProtocol) {}

  request(messages: readonly ContextMessage[], tools: readonly ToolSpec[]): ModelRequest {
    if (this.protocol === "native") return { messages: [...messages], tools: [...tools] };
    const section = toolsSection(tools);
    const out = messages.map(textItem);
    if (section !== "") {
      const first = out[0];
      if (first?.role === "system") {
        out[0] = { role: "system", content: `${first.content}\n\n${section}` };
      } else {
        out.unshift({ role: "system", content: section });
      }
    }
    return { messages: out, tools: [] };
  }

  /** The answer with a text-mode model's `<tool_call>` blocks read as tool calls. */
  answer(result: ChatResult): ChatResult {
    if (this.protocol === "native" || result.toolCalls.length > 0) return result;
    const parsed = parseTextToolCalls(result.content);
    if (parsed.calls.length === 0) return result;
    return {
      ...result,
      content: parsed.content,
      toolCalls: parsed.calls.map((call) => ({
        id: `call_${randomUUID().replaceAll("-", "").slice(0, 24)}`,
        name: call.name,
        arguments: call.arguments,
      })),
      finishReason: "tool_calls",
    };
  }
}

function toolsSection(tools: readonly ToolSpec[]): string {
  let section = toolsSections.get(tools);
  if (section === undefined) {
    section = renderToolsPrompt(tools);
    toolsSections.set(tools, section);
  }
  return section;
}

function textItem(message: ContextMessage): ContextMessage {
  if (message.role === "tool") return cached(message, () => toolResponse(message.content));
  if (message.role !== "assistant" || !message.tool_calls?.length) return message;
  const calls = message.tool_calls;
  return cached(message, () => ({
    role: "assistant",
    content: [message.content, ...calls.map(renderToolCall)].filter((t) => t !== "").join("\n"),
  }));
}

function toolResponse(observation: string): ContextMessage {
  return { role: "user", content: renderToolResponse("", observation) };
}

function cached(message: ContextMessage, render: () => ContextMessage): ContextMessage {
  let text = textItems.get(message);
  if (text === undefined) {
    text = render();
    textItems.set(message, text);
  }
  return text;
}
