/**
 * Making items smaller without losing their place in the history: cutting a text to a token
 * budget (head + tail, as tool results are cut for the model), and capping every tool result
 * of a list.
 *
 * Invariants:
 * - a cut text keeps its beginning and its end with a marker saying how much went, and never
 *   counts more tokens than asked (the cut is re-checked with the real counter);
 * - shrinking returns new message objects and never changes the list's shape: same items, same
 *   order, same tool-call pairs.
 */
import type { ContextMessage } from "../message.js";

export type TextCounter = (text: string) => number;

const MARKER = (omittedChars: number) => `\n…[${omittedChars} chars cut to fit the context]…\n`;
/** Each re-check cuts this much further, so a few rounds always land under the budget. */
const TIGHTEN = 0.85;
const MAX_ROUNDS = 6;

/** `text` within `maxTokens` (head + tail); unchanged when it fits. */
export function cutToTokens(text: string, maxTokens: number, count: TextCounter): string {
  let tokens = count(text);
  if (tokens <= maxTokens) return text;
  if (maxTokens <= 0) return "";
  let keepChars = Math.floor((text.length * maxTokens) / tokens);
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const head = Math.ceil(keepChars / 2);
    const tail = Math.floor(keepChars / 2);
    const cut =
      text.slice(0, head) + MARKER(text.length - head - tail) + text.slice(text.length - tail);
    tokens = count(cut);
    if (tokens <= maxTokens) return cut;
    keepChars = Math.floor(keepChars * TIGHTEN * (maxTokens / tokens));
    if (keepChars <= 0) break;
  }
  return MARKER(text.length).trim();
}

/** Every tool result capped at `maxTokens`; other items as they are. */
export function capToolResults(
  messages: readonly ContextMessage[],
  maxTokens: number,
  count: TextCounter,
): ContextMessage[] {
  return messages.map((m) => {
    if (m.role !== "tool") return m;
    const content = cutToTokens(m.content, maxTokens, count);
    return content === m.content ? m : { ...m, content };
  });
}

/** The largest tool result, in tokens (0 when there is none). */
export function largestToolResult(messages: readonly ContextMessage[], count: TextCounter): number {
  let largest = 0;
  for (const m of messages) if (m.role === "tool") largest = Math.max(largest, count(m.content));
  return largest;
}
