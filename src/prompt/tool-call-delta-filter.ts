/**
 * Keeps a text-mode model's `<tool_call>` blocks out of the streamed answer: clients see the
 * text a model writes before its first call, never the call's JSON (the calls reach them as
 * `tool_call` events once the answer is parsed).
 *
 * Invariants:
 * - the text passed on is a prefix of the text pushed: everything before the first block opener
 *   (`<tool_call`, `<tool>`, `<tool `, `<function=`, any case), nothing from it on;
 * - text that could still become an opener is held back until it cannot, and given back by
 *   `end()` when the stream ends first.
 */

const OPENERS = ["<tool_call", "<tool>", "<tool ", "<function="];

export class ToolCallDeltaFilter {
  private held = "";
  private inCall = false;

  /** The part of `text` (with what was held) that may be shown now. */
  push(text: string): string {
    if (this.inCall) return "";
    const all = this.held + text;
    const lower = all.toLowerCase();
    let start = -1;
    for (const opener of OPENERS) {
      const at = lower.indexOf(opener);
      if (at >= 0 && (start < 0 || at < start)) start = at;
    }
    if (start >= 0) {
      this.inCall = true;
      this.held = "";
      return all.slice(0, start);
    }
    const keep = openerPrefixAtEnd(lower);
    this.held = all.slice(all.length - keep);
    return all.slice(0, all.length - keep);
  }

  /** What was held back when the stream ended without a block. */
  end(): string {
    const rest = this.inCall ? "" : this.held;
    this.held = "";
    return rest;
  }
}

/** Length of the longest end of `text` that is the start of an opener. */
function openerPrefixAtEnd(text: string): number {
  const from = text.lastIndexOf("<");
  if (from < 0) return 0;
  const tail = text.slice(from);
  return OPENERS.some((opener) => opener.startsWith(tail)) ? tail.length : 0;
}
