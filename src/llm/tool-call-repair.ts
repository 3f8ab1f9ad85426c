/**
 * Parses a model's tool-call arguments, with one conservative repair attempt for the ways models
 * commonly mangle JSON: markdown code fences, prose around the object, trailing commas, Python's
 * `True`/`False`/`None`, closing brackets missing at the very end, an object sent as a JSON string.
 *
 * Invariants:
 * - empty or blank arguments are `{}`; valid JSON is taken as it is (and never reported repaired);
 * - the result is always a JSON object: arrays and scalars are an error;
 * - a repair never invents or changes a value: missing brackets are closed only after a complete
 *   value (a closed string, `true`/`false`/`null`, a closed object or array), never inside a
 *   string, after a key, a ":" or a "," or an opening bracket, nor after a number (a cut "12" may
 *   have been "125"). Arguments cut mid-way, as a truncated stream leaves them, stay an error;
 * - an error carries the original text's JSON parse error, which tells the model what is wrong.
 */

export type ParsedToolArguments =
  | {
      ok: true;
      value: unknown;
      /** What the repair fixed, short (e.g. "removed trailing commas"); absent for valid JSON. */
      repaired?: string;
    }
  | { ok: false; error: string };

const NOT_AN_OBJECT = "arguments must be a JSON object";

export function parseToolArguments(raw: string): ParsedToolArguments {
  if (raw.trim() === "") return { ok: true, value: {} };
  let parseError: string;
  try {
    return asObject(JSON.parse(raw));
  } catch (err) {
    parseError = err instanceof Error ? err.message : String(err);
  }
  const repair = repairJson(raw);
  if (!repair) return { ok: false, error: parseError };
  let value: unknown;
  try {
    value = JSON.parse(repair.text);
  } catch {
    return { ok: false, error: parseError };
  }
  return isObject(value)
    ? { ok: true, value, repaired: repair.fixes.join(", ") }
    : { ok: false, error: NOT_AN_OBJECT };
}

/** Valid JSON: an object as it is, or an object encoded once more as a JSON string. */
function asObject(value: unknown): ParsedToolArguments {
  if (isObject(value)) return { ok: true, value };
  if (typeof value === "string" && value.trim().startsWith("{")) {
    try {
      const inner: unknown = JSON.parse(value);
      if (isObject(inner)) return { ok: true, value: inner, repaired: "decoded a JSON string" };
    } catch {
      // A string that merely starts with "{" is not an object.
    }
  }
  return { ok: false, error: NOT_AN_OBJECT };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

const FENCED = /```[A-Za-z0-9_-]*[^\S\n]*\n?([\s\S]*?)(?:```|$)/;
const TRAILING_COMMA = /,(\s*[}\]])/g;
const PYTHON_LITERAL = /\b(True|False|None)\b/g;
const PYTHON_TO_JSON: Record<string, string> = { True: "true", False: "false", None: "null" };

/** The repaired text and what was fixed, or null when nothing could (or may) be fixed. */
function repairJson(raw: string): { text: string; fixes: string[] } | null {
  const fixes: string[] = [];
  let text = raw.trim();

  const fenced = text.includes("```") ? FENCED.exec(text) : null;
  if (fenced) {
    text = (fenced[1] ?? "").trim();
    fixes.push("removed code fences");
  }

  const start = text.indexOf("{");
  if (start < 0) return null;
  const end = matchingEnd(text, start);
  // A second object after the first (`{...} {...}`) is not prose: which one was meant?
  if (end >= 0 && text.includes("{", end)) return null;
  const object = end < 0 ? text.slice(start) : text.slice(start, end);
  if (object.length !== text.length) {
    text = object;
    fixes.push("dropped text around the object");
  }

  const literals = mapOutsideStrings(text, (code) =>
    code.replace(PYTHON_LITERAL, (word) => PYTHON_TO_JSON[word] ?? word),
  );
  if (literals !== text) {
    text = literals;
    fixes.push("replaced Python literals");
  }

  const commas = mapOutsideStrings(text, (code) => code.replace(TRAILING_COMMA, "$1"));
  if (commas !== text) {
    text = commas;
    fixes.push("removed trailing commas");
  }

  const closers = missingClosers(text);
  if (closers === null) return null;
  if (closers !== "") {
    text += closers;
    fixes.push(`closed ${closers.length} bracket${closers.length === 1 ? "" : "s"}`);
  }
  return fixes.length > 0 ? { text, fixes } : null;
}

/** Index after the string opened by the quote at `i`, or -1 if it never closes. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text[j];
    if (c === "\\") j++;
    else if (c === '"') return j + 1;
  }
  return -1;
}

/** Index after the bracket closing the "{" at `start` (strings skipped), or -1 if none does. */
function matchingEnd(text: string, start: number): number {
  let depth = 0;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return -1;
      i = end - 1;
    } else if (c === "{" || c === "[") depth++;
    else if ((c === "}" || c === "]") && --depth === 0) return i + 1;
  }
  return -1;
}

/** Applies `fix` to every stretch of text outside JSON strings; strings stay as they are. */
function mapOutsideStrings(text: string, fix: (code: string) => string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] !== '"') continue;
    const end = stringEnd(text, i);
    out += fix(text.slice(from, i)) + text.slice(i, end < 0 ? text.length : end);
    from = end < 0 ? text.length : end;
    i = from - 1;
  }
  return out + fix(text.slice(from));
}

type LastToken = "none" | "open" | "colon" | "comma" | "key" | "number" | "value";

/**
 * The brackets that close what `text` left open ("" if nothing), or null when closing them could
 * change a value: the text ends inside a string, after an opening bracket, a key, ":" or ",", or
 * after a number that may have been cut; or its brackets do not match.
 */
function missingClosers(text: string): string | null {
  const open: { closer: "}" | "]"; expectKey: boolean }[] = [];
  let last: LastToken = "none";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] ?? "";
    const top = open[open.length - 1];
    if (c === '"') {
      const end = stringEnd(text, i);
      if (end < 0) return null;
      if (top?.closer === "}" && top.expectKey) {
        top.expectKey = false;
        last = "key";
      } else {
        last = "value";
      }
      i = end - 1;
    } else if (c === "{" || c === "[") {
      open.push({ closer: c === "{" ? "}" : "]", expectKey: c === "{" });
      last = "open";
    } else if (c === "}" || c === "]") {
      if (open.pop()?.closer !== c) return null;
      last = "value";
    } else if (c === ":") {
      last = "colon";
    } else if (c === ",") {
      if (top?.closer === "}") top.expectKey = true;
      last = "comma";
    } else if (/[0-9.+-]/.test(c)) {
      last = "number";
    } else if (!/\s/.test(c)) {
      last = "value";
    }
  }
  if (open.length === 0) return "";
  if (last !== "value") return null;
  return open
    .map((o) => o.closer)
    .reverse()
    .join("");
}
