/**
 * Reading the calls out of one block's payload in wunder's text tool-call protocol (see the
 * `payload`, `json-call`, `ARGS`, `children` and `qwen-body` rules in text-tool-protocol.ts):
 * JSON calls (one or several, arrays, the OpenAI `function` shape, string-encoded arguments,
 * salvage of broken JSON), `<name>`/`<arguments>` children, and Qwen `<function=…>` bodies.
 * Finding the blocks is tool-call-blocks.ts.
 *
 * Invariants:
 * - pure and total: never throws; calls come out in the order they were written;
 * - `arguments` is always a JSON text: the compact JSON of an object whenever the model wrote
 *   a readable object, else the model's own text for the arguments (left for the repair step);
 *   missing or empty arguments are `{}`;
 * - a call is dropped only when its name cannot be read, and then `bad` is set.
 */
import { isPlainObject, jsonEnd, searchFrom, tryJson, unfence } from "./text-scan.js";
import type { TextToolCall } from "./text-tool-protocol.js";
import { FUNCTION_CLOSE } from "./tool-call-blocks.js";

const FUNCTION_OPEN = /<function=([^>\n]*)>/gi;
const PARAMETER_OPEN = /<parameter=([^>\n]*)>/gi;
const PARAMETER_CLOSE = /<\/parameter\s*>/gi;

/** The calls read from a payload. */
export interface PayloadResult {
  calls: TextToolCall[];
  /** Something in the block could not be read as a call. */
  bad: boolean;
}

/** The calls in one `<tool_call>` payload. */
export function parsePayload(payload: string): PayloadResult {
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
export function qwenFunction(rawName: string, inner: string): PayloadResult {
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
