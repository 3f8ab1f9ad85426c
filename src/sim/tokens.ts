/**
 * The simulator's notion of a token: for prompts (what the context window is checked against and
 * `usage.prompt_tokens` reports) a real tokenizer, `cl100k_base`, with its own framing — like a
 * provider whose exact tokenizer the farm does not know (the farm estimates with `o200k_base`
 * and calibrates against these reports); for completions "a word plus its following whitespace"
 * (what is streamed one chunk at a time and counted in `usage.completion_tokens`).
 *
 * Invariant: `textPieces(t).join("") === t`, so streaming never alters the answer text.
 */
import { countTokens } from "gpt-tokenizer/encoding/cl100k_base";
import { countPlainText } from "../context/token-count.js";
import { seededRandom, shortHash } from "./hash.js";
import type { ChatRequest } from "./request.js";

/** Per-message framing cost, as in OpenAI's older accounting (role included). */
export const SIM_TOKENS_PER_MESSAGE = 4;
/** The priming of the reply. */
export const SIM_REPLY_TOKENS = 2;

export function simTextTokens(text: string): number {
  return countPlainText(text, countTokens);
}

/**
 * Σ messages (4 + content + per tool call: name + arguments) + 2 + the tools JSON. Tool call
 * ids are not counted. A message the text protocol rewrote counts as sent (4 + its
 * `sentContent`, which holds its calls), so a text-mode prompt costs what its text costs.
 */
export function estimatePromptTokens(request: ChatRequest): number {
  let tokens = SIM_REPLY_TOKENS + simTextTokens(request.toolsJson);
  for (const m of request.messages) {
    if (m.sentContent !== undefined) {
      tokens += SIM_TOKENS_PER_MESSAGE + simTextTokens(m.sentContent);
      continue;
    }
    tokens += SIM_TOKENS_PER_MESSAGE + simTextTokens(m.content);
    for (const call of m.toolCalls)
      tokens += simTextTokens(call.name) + simTextTokens(call.arguments);
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
