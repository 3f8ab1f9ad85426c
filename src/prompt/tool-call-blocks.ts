/**
 * Finding the blocks of wunder's text tool-call protocol in a model's text: where each
 * `<tool_call>`/`<tool>` or bare Qwen `<function=…>` block starts, where its payload ends and
 * where the block ends (see the `block` and `close` rules in text-tool-protocol.ts). Reading a
 * block's payload is tool-call-payload.ts.
 *
 * Invariants:
 * - pure and total: never throws; blocks come out in text order and never overlap;
 * - found by scanning, not by a regular expression: a `</tool_call>` (or brace) inside a JSON
 *   string does not end a block;
 * - an unclosed block ends at the end of the text, at the next opening tag, or right after a
 *   complete JSON value that is followed by neither a close tag nor the end.
 */
import { matchAt, searchFrom } from "./text-scan.js";

const BLOCK_OPEN = /<(tool_call|tool)(?:\s[^>]*)?>|<function=([^>\n]*)>/gi;
const TOOL_OPEN_AT = /<(?:tool_call|tool)(?:\s[^>]*)?>/iy;
const TOOL_OPEN = /<(?:tool_call|tool)(?:\s[^>]*)?>/gi;
const TOOL_CLOSE_AT = /<\/(?:tool_call|tool)\s*>/iy;
const TOOL_CLOSE = /<\/(?:tool_call|tool)\s*>/gi;
const ANY_OPEN = /<(?:tool_call|tool)(?:\s[^>]*)?>|<function=[^>\n]*>/gi;
/** A Qwen `</function>` close tag (also used inside payloads, by tool-call-payload.ts). */
export const FUNCTION_CLOSE = /<\/function\s*>/gi;

interface BlockEnd {
  /** Where the payload ends (the close tag's start, or the block's end when unclosed). */
  payloadEnd: number;
  /** Where the block ends (after the close tag). */
  blockEnd: number;
}

/** One block: its raw span and its payload. */
export interface ToolCallBlock {
  /** Where the block's opening tag starts. */
  start: number;
  /** Where the block ends (after its close tag, if any). */
  end: number;
  /** The text between the opening tag and the close tag (or the block's end). */
  payload: string;
  /** The NAME of a bare `<function=NAME>` block; undefined for `<tool_call>`/`<tool>`. */
  functionName: string | undefined;
}

/** The blocks of `text`, in order; the scan resumes after each block's end. */
export function* toolCallBlocks(text: string): Generator<ToolCallBlock> {
  const open = new RegExp(BLOCK_OPEN.source, BLOCK_OPEN.flags);
  for (let m = open.exec(text); m !== null; m = open.exec(text)) {
    const start = m.index;
    const afterOpen = start + m[0].length;
    const functionName = m[2];
    const end =
      functionName !== undefined
        ? functionBlockEnd(text, afterOpen)
        : toolBlockEnd(text, afterOpen);
    yield {
      start,
      end: end.blockEnd,
      payload: text.slice(afterOpen, end.payloadEnd),
      functionName,
    };
    open.lastIndex = end.blockEnd;
  }
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
