/**
 * Keeps a text-mode model's `<tool_call>` blocks out of the streamed answer: clients see the
 * text a model writes before its first call, never the call's JSON (the calls reach them as
 * `tool_call` events once the answer is parsed).
 *
 * Invariants:
 * - the text passed on is a prefix of the text pushed: everything before the first block opener
 *   (`<tool_call`, `<tool>`, `<tool `, `<function=`, any case), nothing from it on;
 * - text that could still become an opener is held back until it cannot, and given back by
 *   `end()` when the stream ends first;
 * - everything withheld is kept: when the answer turns out to hold no call after all (a block
 *   the parser cannot read, or prose that merely mentions a tag), `end(false)` gives it back,
 *   so the stream always adds up to the answer's text when there is no call.
 */

const OPENERS = ["<tool_call", "<tool>", "<tool ", "<function="];

export class ToolCallDeltaFilter {
  private held = "";
  private inCall = false;
  /** Text from the first opener on. */
  private withheld = "";

  /** The part of `text` (with what was held) that may be shown now. */
  push(text: string): string {
    if (this.inCall) {
      this.withheld += text;
      return "";
    }
    const all = this.held + text;
    // ASCII only: a lowercase form of another length (e.g. "İ") would shift the offsets.
    const lower = all.replace(/[A-Z]/g, (c) => c.toLowerCase());
    let start = -1;
    for (const opener of OPENERS) {
      const at = lower.indexOf(opener);
      if (at >= 0 && (start < 0 || at < start)) start = at;
    }
    if (start >= 0) {
      this.inCall = true;
      this.held = "";
      this.withheld = all.slice(start);
      return all.slice(0, start);
    }
    const keep = openerPrefixAtEnd(lower);
    this.held = all.slice(all.length - keep);
    return all.slice(0, all.length - keep);
  }

  /**
   * What is left to show when the stream ends: the held-back tail when no block began; with a
   * block, nothing if the answer had calls (`hadCalls`), else all the withheld text.
   */
  end(hadCalls: boolean): string {
    const rest = this.inCall ? (hadCalls ? "" : this.withheld) : this.held;
    this.held = "";
    this.withheld = "";
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
