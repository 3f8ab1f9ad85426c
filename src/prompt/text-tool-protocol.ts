/**
 * wunder's text tool-call protocol (`tool_call_mode: tool_call`), for models without native
 * function calling: the tools are listed in the system prompt, the model writes its calls as
 * tagged JSON in its answer, and each result goes back as a user message `tool_response: …`.
 *
 * This module is the parser's entry: it owns the call types, parseTextToolCalls and the
 * `content` left around the blocks. Finding the blocks is tool-call-blocks.ts, reading a
 * block's payload is tool-call-payload.ts, rendering (prompt, calls, results) is
 * text-tool-render.ts.
 *
 * Grammar accepted by parseTextToolCalls (tags are case-insensitive, whitespace is free):
 *
 *   block     := "<tool_call" attrs? ">" payload close?        (also "<tool" attrs? ">")
 *              | "<function=" NAME ">" qwen-body ("</function>")?
 *   close     := "</tool_call>" | "</tool>"
 *                A missing close ends the block at the end of the text (a `</tool_call>` stop
 *                sequence cuts it off), at the next opening tag, or, when a complete JSON value
 *                is followed by neither, right after that value.
 *   payload   := fence? ( json-call ( ","? json-call )* | qwen-body | children ) fence?
 *   fence     := "```" LANG?                                   (a markdown code fence)
 *   json-call := { "name": STRING, ("arguments" | "parameters")?: ARGS }
 *              | { "function": json-call, ... }                (the OpenAI tool_calls shape)
 *              | [ json-call, ... ]
 *   ARGS      := object | STRING holding JSON (`"{\"a\":1}"`, fences allowed) | "" | null
 *   children  := "<name>" NAME "</name>" ( "<arguments>" | "<parameters>" ) ARGS-TEXT close-tag?
 *   qwen-body := ( "<function=" NAME ">" )? ( "<parameter=" KEY ">" VALUE "</parameter>"? )*
 *                VALUE is parsed as JSON when it parses, else kept as a string (one leading and
 *                one trailing newline dropped, as Qwen writes them).
 *
 * Invariants:
 * - pure and total: never throws, whatever the text; the same input gives the same output;
 * - a block is found by scanning, not by a regular expression: a `</tool_call>` (or brace)
 *   inside a JSON string does not end the call;
 * - calls come out in the order they were written; `content` is the text with every block
 *   removed, pieces trimmed and joined by a blank line (a code fence left empty by the removal
 *   goes too); with no block at all, `content` is the text exactly as given;
 * - `arguments` is always a JSON text. It is the compact JSON of an object whenever the model
 *   wrote a readable object (directly or string-encoded); otherwise it is the model's own text
 *   for the arguments (broken JSON, or a non-object value), left for the orchestrator's repair
 *   step (src/llm/tool-call-repair.ts) to fix or to report. Missing or empty arguments are `{}`;
 * - a call is dropped only when its name cannot be read; its block's raw text then goes to
 *   `malformed` (once per block, also when other calls of the same block were read).
 */
import { toolCallBlocks } from "./tool-call-blocks.js";
import { parsePayload, qwenFunction } from "./tool-call-payload.js";

export interface TextToolCall {
  name: string;
  /** A JSON text; see the invariants above. */
  arguments: string;
}

export interface ParsedTextToolCalls {
  content: string;
  calls: TextToolCall[];
  malformed: string[];
}

/** Extracts the tool calls from a model's text; see the header for the grammar. */
export function parseTextToolCalls(text: string): ParsedTextToolCalls {
  const calls: TextToolCall[] = [];
  const malformed: string[] = [];
  const pieces: string[] = [];
  let pos = 0;
  for (const block of toolCallBlocks(text)) {
    const result =
      block.functionName !== undefined
        ? qwenFunction(block.functionName, block.payload)
        : parsePayload(block.payload);
    calls.push(...result.calls);
    if (result.bad) malformed.push(text.slice(block.start, block.end));
    pieces.push(text.slice(pos, block.start));
    pos = block.end;
  }
  if (pieces.length === 0) return { content: text, calls, malformed };
  pieces.push(text.slice(pos));
  return { content: joinPieces(pieces), calls, malformed };
}

/** Joins the text around removed blocks; drops code fences the removal left empty. */
function joinPieces(pieces: string[]): string {
  const parts = [...pieces];
  for (let i = 0; i + 1 < parts.length; i++) {
    const left = parts[i] ?? "";
    const right = parts[i + 1] ?? "";
    const opening = /(?:^|\n)[^\S\n]*```[\w+.-]*\s*$/.exec(left);
    const closing = /^\s*```[^\S\n]*(?=\n|$)/.exec(right);
    if (opening && closing) {
      parts[i] = left.slice(0, opening.index);
      parts[i + 1] = right.slice(closing[0].length);
    }
  }
  return parts
    .map((part) => part.trim())
    .filter((part) => part !== "")
    .join("\n\n");
}
