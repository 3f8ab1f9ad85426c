/**
 * The simulator's notion of a token: a rough chars/4 estimate for prompts (what the context
 * window is checked against) and "a word plus its following whitespace" for completions (what is
 * streamed one chunk at a time and counted in `usage.completion_tokens`).
 *
 * Invariant: `textPieces(t).join("") === t`, so streaming never alters the answer text.
 */
import { seededRandom, shortHash } from "./hash.js";
import type { ChatRequest } from "./request.js";

const CHARS_PER_TOKEN = 4;
/** Per-message framing cost, as in OpenAI's own accounting. */
const TOKENS_PER_MESSAGE = 4;

export function estimatePromptTokens(request: ChatRequest): number {
  let tokens = Math.ceil(request.toolsChars / CHARS_PER_TOKEN);
  for (const m of request.messages) {
    let chars = m.content.length;
    for (const call of m.toolCalls) chars += call.name.length + call.arguments.length;
    tokens += TOKENS_PER_MESSAGE + Math.ceil(chars / CHARS_PER_TOKEN);
  }
  return tokens;
}

const PIECE = /\S+\s*/g;

/** The streamed tokens of `text`; leading whitespace rides with the first word. */
export function textPieces(text: string): string[] {
  const pieces = text.match(PIECE) ?? [];
  const lead = text.length - text.trimStart().length;
  if (pieces.length === 0) return text === "" ? [] : [text];
  if (lead > 0) pieces[0] = text.slice(0, lead) + pieces[0];
  return pieces;
}

/** Tool-call arguments are streamed in fragments of this many chars, like a provider's tokens. */
export const ARGUMENT_FRAGMENT_CHARS = 4;

export function argumentFragments(args: string): string[] {
  const fragments: string[] = [];
  for (let i = 0; i < args.length; i += ARGUMENT_FRAGMENT_CHARS) {
    fragments.push(args.slice(i, i + ARGUMENT_FRAGMENT_CHARS));
  }
  return fragments;
}

const FILLER_WORDS = (
  "the farm keeps every turn moving while workers stream events to each session and tools run " +
  "inside a small workspace so answers arrive quickly with steady simulated tokens from one model " +
  "round after another until done"
).split(" ");

/**
 * `prefix` followed by filler words until the text has `replyTokens` tokens; a longer prefix is
 * kept whole. The filler is a function of `seedKey` only, so equal inputs give equal answers.
 */
export function withFiller(prefix: string, replyTokens: number, seedKey: string): string {
  const missing = replyTokens - textPieces(prefix).length;
  if (missing <= 0) return prefix;
  const random = seededRandom(Number.parseInt(shortHash([seedKey], 8), 16));
  const words: string[] = [];
  for (let i = 0; i < missing; i++) {
    words.push(FILLER_WORDS[Math.floor(random() * FILLER_WORDS.length)] ?? "done");
  }
  const filler = `${words.join(" ")}.`;
  return prefix === "" ? filler : `${prefix.trimEnd()} ${filler}`;
}
