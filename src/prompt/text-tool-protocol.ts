/**
 * wunder's text tool-call protocol (`tool_call_mode: tool_call`), for models without native
 * function calling: the tools are listed in the system prompt, the model writes its calls as
 * tagged JSON in its answer, and each result goes back as a user message `tool_response: …`.
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
import type { ToolSpec } from "../llm/chat-stream.js";

/** Recommended stop sequence for a model in text mode (wunder's default). */
export const TOOL_CALL_STOP = "</tool_call>";
/** The prefix of a user message that carries a tool result. */
export const TOOL_RESPONSE_PREFIX = "tool_response: ";

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

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const BLOCK_OPEN = /<(tool_call|tool)(?:\s[^>]*)?>|<function=([^>\n]*)>/gi;
const TOOL_OPEN_AT = /<(?:tool_call|tool)(?:\s[^>]*)?>/iy;
const TOOL_OPEN = /<(?:tool_call|tool)(?:\s[^>]*)?>/gi;
const TOOL_CLOSE_AT = /<\/(?:tool_call|tool)\s*>/iy;
const TOOL_CLOSE = /<\/(?:tool_call|tool)\s*>/gi;
const ANY_OPEN = /<(?:tool_call|tool)(?:\s[^>]*)?>|<function=[^>\n]*>/gi;
const FUNCTION_OPEN = /<function=([^>\n]*)>/gi;
const FUNCTION_CLOSE = /<\/function\s*>/gi;
const PARAMETER_OPEN = /<parameter=([^>\n]*)>/gi;
const PARAMETER_CLOSE = /<\/parameter\s*>/gi;

interface BlockEnd {
  /** Where the payload ends (the close tag's start, or the block's end when unclosed). */
  payloadEnd: number;
  /** Where the block ends (after the close tag). */
  blockEnd: number;
}

interface PayloadResult {
  calls: TextToolCall[];
  /** Something in the block could not be read as a call. */
  bad: boolean;
}

/** Extracts the tool calls from a model's text; see the header for the grammar. */
export function parseTextToolCalls(text: string): ParsedTextToolCalls {
  const calls: TextToolCall[] = [];
  const malformed: string[] = [];
  const pieces: string[] = [];
  let pos = 0;
  const open = new RegExp(BLOCK_OPEN.source, BLOCK_OPEN.flags);
  for (let m = open.exec(text); m !== null; m = open.exec(text)) {
    const start = m.index;
    const afterOpen = start + m[0].length;
    const fnName = m[2];
    let end: BlockEnd;
    let result: PayloadResult;
    if (fnName !== undefined) {
      end = functionBlockEnd(text, afterOpen);
      result = qwenFunction(fnName, text.slice(afterOpen, end.payloadEnd));
    } else {
      end = toolBlockEnd(text, afterOpen);
      result = parsePayload(text.slice(afterOpen, end.payloadEnd));
    }
    calls.push(...result.calls);
    if (result.bad) malformed.push(text.slice(start, end.blockEnd));
    pieces.push(text.slice(pos, start));
    pos = end.blockEnd;
    open.lastIndex = pos;
  }
  if (pieces.length === 0) return { content: text, calls, malformed };
  pieces.push(text.slice(pos));
  return { content: joinPieces(pieces), calls, malformed };
}

/**
 * The end of a `<tool_call>`/`<tool>` block whose payload starts at `from`. Scans with JSON
 * strings and brackets in mind, so a close tag inside a JSON value is skipped; if the brackets
 * never balance (a cut or broken payload, or free text with a stray brace), falls back to the
 * first close tag before the next opening tag.
 */
function toolBlockEnd(text: string, from: number): BlockEnd {
  const fenced = /^\s*```/.test(text.slice(from, from + 64));
  const lookahead = new Lookahead(text);
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (depth > 0) {
      if (c === '"') inString = true;
      else if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        depth--;
        // A complete value with no close tag ahead (before the next block): the block was
        // left open, and what follows the value is prose.
        if (depth === 0 && !lookahead.closedBeforeNextOpen(i + 1)) {
          let end = i + 1;
          if (fenced) end += /^\s*```[^\S\n]*(?=\n|$)/.exec(text.slice(end))?.[0].length ?? 0;
          return { payloadEnd: end, blockEnd: end };
        }
      }
      continue;
    }
    if (c === "{" || c === "[") depth++;
    else if (c === "<") {
      const close = matchAt(TOOL_CLOSE_AT, text, i);
      if (close !== null) return { payloadEnd: i, blockEnd: i + close.length };
      if (matchAt(TOOL_OPEN_AT, text, i) !== null) return { payloadEnd: i, blockEnd: i };
    }
  }
  if (depth === 0 && !inString) return { payloadEnd: text.length, blockEnd: text.length };
  const close = searchFrom(TOOL_CLOSE, text, from);
  const next = searchFrom(TOOL_OPEN, text, from);
  if (close && (!next || close.index < next.index)) {
    return { payloadEnd: close.index, blockEnd: close.index + close.text.length };
  }
  const stop = next ? next.index : text.length;
  return { payloadEnd: stop, blockEnd: stop };
}

/** The next close and opening tags after a position, each searched again only once passed. */
class Lookahead {
  private close = { at: -1, index: -1 };
  private open = { at: -1, index: -1 };

  constructor(private readonly text: string) {}

  /** Whether a close tag comes after `i`, before any opening tag. */
  closedBeforeNextOpen(i: number): boolean {
    const close = this.next(this.close, TOOL_CLOSE, i);
    if (close < 0) return false;
    const open = this.next(this.open, TOOL_OPEN, i);
    return open < 0 || close < open;
  }

  private next(cache: { at: number; index: number }, re: RegExp, i: number): number {
    // A cached hit still ahead of `i` (or a cached miss) stays valid for a later `i`.
    if (cache.at < 0 || (cache.index >= 0 && cache.index < i)) {
      cache.at = i;
      cache.index = searchFrom(re, this.text, i)?.index ?? -1;
    }
    return cache.index;
  }
}

/** The end of a bare `<function=…>` block: its `</function>`, else the next opening tag. */
function functionBlockEnd(text: string, from: number): BlockEnd {
  const close = searchFrom(FUNCTION_CLOSE, text, from);
  const next = searchFrom(ANY_OPEN, text, from);
  if (close && (!next || close.index < next.index)) {
    return { payloadEnd: close.index, blockEnd: close.index + close.text.length };
  }
  const stop = next ? next.index : text.length;
  return { payloadEnd: stop, blockEnd: stop };
}

/** The calls in one `<tool_call>` payload. */
function parsePayload(payload: string): PayloadResult {
  const body = unfence(payload.trim());
  if (body === "") return { calls: [], bad: true };
  const first = body[0];
  if (first === "{" || first === "[") return jsonCalls(body);
  if (/<function=/i.test(body)) return qwenCalls(body);
  if (/<name\s*>/i.test(body)) return childrenCall(body);
  return { calls: [], bad: true };
}

/** One or more JSON values, each a call or an array of calls; trailing prose is ignored. */
function jsonCalls(body: string): PayloadResult {
  const calls: TextToolCall[] = [];
  let bad = false;
  let i = 0;
  while (i < body.length) {
    while (i < body.length && /[\s,]/.test(body[i] ?? "")) i++;
    const c = body[i];
    if (c === undefined) break;
    if (c !== "{" && c !== "[") {
      if (calls.length === 0) bad = true;
      break;
    }
    const end = jsonEnd(body, i);
    const segment = end < 0 ? body.slice(i) : body.slice(i, end);
    const parsed = tryJson(segment);
    const read = parsed.ok ? callsFromValue(parsed.value) : salvage(segment, end >= 0);
    calls.push(...read.calls);
    bad ||= read.bad;
    if (end < 0) break;
    i = end;
  }
  return { calls, bad };
}

function callsFromValue(value: unknown): PayloadResult {
  if (Array.isArray(value)) {
    const calls: TextToolCall[] = [];
    let bad = value.length === 0;
    for (const item of value) {
      const read = callsFromValue(item);
      calls.push(...read.calls);
      bad ||= read.bad;
    }
    return { calls, bad };
  }
  const call = callFromObject(value);
  return call ? { calls: [call], bad: false } : { calls: [], bad: true };
}

function callFromObject(value: unknown): TextToolCall | null {
  if (!isPlainObject(value)) return null;
  let obj = value;
  if (typeof obj.name !== "string" && isPlainObject(obj.function)) obj = obj.function;
  const name = typeof obj.name === "string" ? obj.name.trim() : "";
  if (name === "") return null;
  const args = Object.hasOwn(obj, "arguments") ? obj.arguments : obj.parameters;
  return { name, arguments: argumentsText(args) };
}

/** The arguments as JSON text: see the header's invariants. */
function argumentsText(value: unknown): string {
  if (value === undefined || value === null) return "{}";
  if (typeof value === "string") {
    const inner = unfence(value.trim());
    if (inner === "") return "{}";
    const parsed = tryJson(inner);
    if (parsed.ok && isPlainObject(parsed.value)) return JSON.stringify(parsed.value);
    return value;
  }
  return JSON.stringify(value);
}

const NAME_FIELD = /"name"\s*:\s*("(?:[^"\\]|\\.)*")/;
const ARGS_FIELD = /"(?:arguments|parameters)"\s*:\s*/;

/**
 * A call from a JSON segment that does not parse: the name when a `"name": "…"` field can be
 * read outside the arguments, with the arguments' own text kept for the orchestrator's repair.
 * `complete` tells whether the segment's brackets balanced (else it was cut off).
 */
function salvage(segment: string, complete: boolean): PayloadResult {
  const fail: PayloadResult = { calls: [], bad: true };
  const key = ARGS_FIELD.exec(segment);
  let name: string | null;
  let args: string | null;
  if (!key) {
    name = readName(segment);
    // A cut segment may have lost its arguments: calling the tool without them is a guess.
    args = complete ? "{}" : null;
  } else {
    const valueStart = key.index + key[0].length;
    const rest = segment.slice(valueStart);
    const first = rest[0];
    if (first === "{" || first === "[") {
      const end = jsonEnd(rest, 0);
      const raw = end < 0 ? rest.trimEnd() : rest.slice(0, end);
      name =
        readName(segment.slice(0, key.index)) ??
        (end < 0 ? null : readName(segment.slice(valueStart + end)));
      args = argumentsText(raw);
    } else if (first === '"') {
      const literal = /^"(?:[^"\\]|\\.)*"/.exec(rest);
      const decoded = literal ? tryJson(literal[0]) : null;
      name =
        readName(segment.slice(0, key.index)) ??
        (literal ? readName(segment.slice(valueStart + literal[0].length)) : null);
      args =
        decoded?.ok && typeof decoded.value === "string"
          ? argumentsText(decoded.value)
          : rest.trimEnd();
    } else {
      name = readName(segment.slice(0, key.index));
      let raw = complete ? rest.replace(/\}\s*$/, "") : rest;
      raw = raw.trim().replace(/,$/, "").trim();
      args = raw === "" ? null : raw;
    }
  }
  if (name === null || args === null) return fail;
  return { calls: [{ name, arguments: args }], bad: false };
}

function readName(text: string): string | null {
  const m = NAME_FIELD.exec(text);
  if (!m?.[1]) return null;
  const parsed = tryJson(m[1]);
  if (!parsed.ok || typeof parsed.value !== "string") return null;
  const name = parsed.value.trim();
  return name === "" ? null : name;
}

/** `<name>x</name><arguments>{…}</arguments>` children. */
function childrenCall(body: string): PayloadResult {
  const name = cleanName(tagContent(body, "name") ?? "");
  if (name === "") return { calls: [], bad: true };
  const args = tagContent(body, "arguments") ?? tagContent(body, "parameters");
  return { calls: [{ name, arguments: args === null ? "{}" : argumentsText(args) }], bad: false };
}

/** The text inside `<tag>…</tag>` (to the end when unclosed; JSON inside is scanned whole). */
function tagContent(body: string, tag: string): string | null {
  const open = new RegExp(`<${tag}\\s*>`, "i").exec(body);
  if (!open) return null;
  const start = open.index + open[0].length;
  const lead = /^\s*(?:```[\w+.-]*[^\S\n]*\n?)?\s*/.exec(body.slice(start))?.[0].length ?? 0;
  const first = body[start + lead];
  let from = start;
  if (first === "{" || first === "[") {
    const end = jsonEnd(body, start + lead);
    if (end >= 0) from = end;
  }
  const close = searchFrom(new RegExp(`</${tag}\\s*>`, "gi"), body, from);
  return body.slice(start, close ? close.index : body.length);
}

/** Qwen-style `<function=NAME>…</function>` blocks inside a `<tool_call>` payload. */
function qwenCalls(body: string): PayloadResult {
  const calls: TextToolCall[] = [];
  let bad = false;
  const open = new RegExp(FUNCTION_OPEN.source, FUNCTION_OPEN.flags);
  for (let m = open.exec(body); m !== null; m = open.exec(body)) {
    const start = m.index + m[0].length;
    const close = searchFrom(FUNCTION_CLOSE, body, start);
    const next = searchFrom(FUNCTION_OPEN, body, start);
    let end = body.length;
    if (close && (!next || close.index < next.index)) end = close.index;
    else if (next) end = next.index;
    const read = qwenFunction(m[1] ?? "", body.slice(start, end));
    calls.push(...read.calls);
    bad ||= read.bad;
    open.lastIndex = close && end === close.index ? end + close.text.length : end;
  }
  return { calls, bad };
}

/** One Qwen function: its name and `<parameter=K>v</parameter>` list. */
function qwenFunction(rawName: string, inner: string): PayloadResult {
  const name = cleanName(rawName);
  if (name === "") return { calls: [], bad: true };
  const entries: [string, unknown][] = [];
  const open = new RegExp(PARAMETER_OPEN.source, PARAMETER_OPEN.flags);
  for (let m = open.exec(inner); m !== null; m = open.exec(inner)) {
    const start = m.index + m[0].length;
    const close = searchFrom(PARAMETER_CLOSE, inner, start);
    const next = searchFrom(PARAMETER_OPEN, inner, start);
    let end = inner.length;
    if (close && (!next || close.index < next.index)) end = close.index;
    else if (next) end = next.index;
    const key = cleanName(m[1] ?? "");
    if (key !== "") entries.push([key, qwenValue(inner.slice(start, end))]);
    open.lastIndex = close && end === close.index ? end + close.text.length : end;
  }
  // fromEntries defines own properties, so even a "__proto__" key stays plain data.
  return { calls: [{ name, arguments: JSON.stringify(Object.fromEntries(entries)) }], bad: false };
}

function qwenValue(raw: string): unknown {
  const value = raw.replace(/^\r?\n/, "").replace(/\r?\n$/, "");
  const parsed = tryJson(value.trim());
  return parsed.ok ? parsed.value : value;
}

function cleanName(raw: string): string {
  return raw
    .trim()
    .replace(/^["'`]+|["'`]+$/g, "")
    .trim();
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Index after the bracket closing the one at `start` (strings skipped), or -1. */
function jsonEnd(text: string, start: number): number {
  const stack: string[] = [];
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (j >= text.length) return -1;
      i = j;
    } else if (c === "{") stack.push("}");
    else if (c === "[") stack.push("]");
    else if (c === "}" || c === "]") {
      if (stack.pop() !== c) return -1;
      if (stack.length === 0) return i + 1;
    }
  }
  return -1;
}

/** The text without a surrounding markdown code fence. */
function unfence(text: string): string {
  if (!text.startsWith("```")) return text;
  return text
    .replace(/^```[\w+.-]*[^\S\n]*\n?/, "")
    .replace(/\n?```\s*$/, "")
    .trim();
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

function matchAt(sticky: RegExp, text: string, i: number): string | null {
  sticky.lastIndex = i;
  return sticky.exec(text)?.[0] ?? null;
}

function searchFrom(
  global: RegExp,
  text: string,
  from: number,
): { index: number; text: string } | null {
  global.lastIndex = from;
  const m = global.exec(text);
  return m ? { index: m.index, text: m[0] } : null;
}

function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
