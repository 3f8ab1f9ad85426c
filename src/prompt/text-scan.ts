/**
 * Small text and JSON helpers shared by the text tool-call protocol's renderer and parser
 * (text-tool-render.ts, tool-call-blocks.ts, tool-call-payload.ts).
 *
 * Invariants: every function is pure and total (never throws); regular expressions passed in
 * are used through their `lastIndex` only, which each call sets before matching.
 */

/** Index after the bracket closing the one at `start` (strings skipped), or -1. */
export function jsonEnd(text: string, start: number): number {
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
export function unfence(text: string): string {
  if (!text.startsWith("```")) return text;
  return text
    .replace(/^```[\w+.-]*[^\S\n]*\n?/, "")
    .replace(/\n?```\s*$/, "")
    .trim();
}

export function matchAt(sticky: RegExp, text: string, i: number): string | null {
  sticky.lastIndex = i;
  return sticky.exec(text)?.[0] ?? null;
}

export function searchFrom(
  global: RegExp,
  text: string,
  from: number,
): { index: number; text: string } | null {
  global.lastIndex = from;
  const m = global.exec(text);
  return m ? { index: m.index, text: m[0] } : null;
}

export function tryJson(text: string): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch {
    return { ok: false };
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
