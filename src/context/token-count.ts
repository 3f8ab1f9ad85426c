/**
 * Prompt token estimates with a real tokenizer (`o200k_base`, the encoding of OpenAI's current
 * models), framed like OpenAI's chat accounting:
 *
 *   prompt = Σ messages (TOKENS_PER_MESSAGE + role + content
 *                        + per tool call: TOKENS_PER_TOOL_CALL + name + arguments
 *                        + for a tool result: its tool_call_id)
 *            + REPLY_PRIMING_TOKENS + tokens of the tools JSON
 *
 * A provider's own tokenizer and framing differ (and are often unknown): `TokenCalibration`
 * (token-calibration.ts) scales these raw counts by what the provider reports. Tokenizers differ
 * most on non-Latin scripts (a Chinese character is ~0.7 tokens in o200k_base, ~1 in
 * cl100k_base, less in Qwen's or DeepSeek's), so a count also carries `nonLatinChars`, which lets
 * the calibration learn how much that share of the prompt shifts the provider's count.
 *
 * Invariants:
 * - text is counted as plain text: special-token spellings such as `<|endoftext|>` in a message
 *   count as the text they are, they never throw;
 * - a message's count is cached by object identity (histories are re-counted before every
 *   call), so messages must not be mutated once counted — history items are replaced, never
 *   edited (normalize.ts keeps object identity for the same reason);
 * - a tools array's count is cached the same way.
 */
import { countTokens } from "gpt-tokenizer/encoding/o200k_base";
import type { ContextMessage } from "./message.js";

export const TOKENS_PER_MESSAGE = 3;
export const TOKENS_PER_TOOL_CALL = 3;
export const REPLY_PRIMING_TOKENS = 3;

/** No special tokens are recognised: user text is only text. */
const AS_PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

/** An encoding's `countTokens` (gpt-tokenizer's signature). */
export type EncodingCount = (text: string, options: typeof AS_PLAIN_TEXT) => number;

export function countTextTokens(text: string): number {
  return countPlainText(text, countTokens);
}

/** Runs of non-space characters longer than this are counted from a sample. */
const LONG_RUN_CHARS = 512;
const LONG_RUN = new RegExp(`\\S{${LONG_RUN_CHARS},}`, "gu");
const RUN_SAMPLE_CHARS = 256;

/**
 * The tokens of `text` as plain text (special-token spellings count as what they are) in
 * `encoding`, in time linear in the text. BPE merging is quadratic in the length of one
 * pre-tokenized word, so a run without spaces (base64, minified code, "xxxx…") of 100,000 chars
 * takes seconds and one of a megabyte minutes. Such runs are counted from a sample and scaled;
 * everything else is counted exactly. Shared with the simulator, which tokenises like a provider.
 */
export function countPlainText(text: string, encoding: EncodingCount): number {
  const count = (piece: string) => encoding(piece, AS_PLAIN_TEXT);
  if (text === "") return 0;
  if (text.length < LONG_RUN_CHARS) return count(text);
  let total = 0;
  let from = 0;
  for (const run of text.matchAll(LONG_RUN)) {
    if (run.index > from) total += count(text.slice(from, run.index));
    const sample = run[0].slice(0, RUN_SAMPLE_CHARS);
    total += Math.ceil((count(sample) * run[0].length) / sample.length);
    from = run.index + run[0].length;
  }
  if (from < text.length) total += count(text.slice(from));
  return total;
}

const ROLE_TOKENS: Record<ContextMessage["role"], number> = {
  system: countTextTokens("system"),
  user: countTextTokens("user"),
  assistant: countTextTokens("assistant"),
  tool: countTextTokens("tool"),
};

/** Raw (uncalibrated) tokens, and how many of the counted characters are non-Latin. */
export interface TokenCount {
  tokens: number;
  nonLatinChars: number;
}

/**
 * UTF-16 code units from U+0370 on (Greek, Cyrillic, Arabic, Indic, CJK, kana, Hangul, emoji…),
 * general punctuation (U+2000–U+206F: dashes, curly quotes) excepted.
 */
export function countNonLatinChars(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x370 && (c < 0x2000 || c > 0x206f)) n++;
  }
  return n;
}

const textCount = (text: string): TokenCount => ({
  tokens: countTextTokens(text),
  nonLatinChars: countNonLatinChars(text),
});

const messageCache = new WeakMap<ContextMessage, TokenCount>();
const toolsCache = new WeakMap<readonly unknown[], TokenCount>();

/** One message's tokens and non-Latin characters, framing included; cached per message object. */
export function countMessage(m: ContextMessage): TokenCount {
  const cached = messageCache.get(m);
  if (cached !== undefined) return cached;
  const texts = [m.content];
  let framing = TOKENS_PER_MESSAGE + ROLE_TOKENS[m.role];
  if (m.role === "assistant") {
    for (const call of m.tool_calls ?? []) {
      framing += TOKENS_PER_TOOL_CALL;
      texts.push(call.name, call.arguments);
    }
  } else if (m.role === "tool") {
    texts.push(m.tool_call_id);
  }
  const count: TokenCount = { tokens: framing, nonLatinChars: 0 };
  for (const text of texts) {
    count.tokens += countTextTokens(text);
    count.nonLatinChars += countNonLatinChars(text);
  }
  messageCache.set(m, count);
  return count;
}

/** One message's tokens, framing included; cached per message object. */
export function countMessageTokens(m: ContextMessage): number {
  return countMessage(m).tokens;
}

/**
 * The tool specs: their JSON text, or the JSON of the array (cached per array object). No tools
 * cost nothing.
 */
export function countTools(tools: string | readonly unknown[]): TokenCount {
  if (typeof tools === "string") return textCount(tools);
  if (tools.length === 0) return { tokens: 0, nonLatinChars: 0 };
  const cached = toolsCache.get(tools);
  if (cached !== undefined) return cached;
  const count = textCount(JSON.stringify(tools));
  toolsCache.set(tools, count);
  return count;
}

export function countToolsTokens(tools: string | readonly unknown[]): number {
  return countTools(tools).tokens;
}

/** The whole request: messages, reply priming and tool specs (raw, uncalibrated). */
export function countPrompt(
  messages: readonly ContextMessage[],
  tools: string | readonly unknown[] = "",
): TokenCount {
  const specs = countTools(tools);
  let tokens = REPLY_PRIMING_TOKENS + specs.tokens;
  let nonLatinChars = specs.nonLatinChars;
  for (const m of messages) {
    const count = countMessage(m);
    tokens += count.tokens;
    nonLatinChars += count.nonLatinChars;
  }
  return { tokens, nonLatinChars };
}

/** The whole request's prompt tokens: messages, reply priming and tool specs (raw, uncalibrated). */
export function countPromptTokens(
  messages: readonly ContextMessage[],
  tools: string | readonly unknown[] = "",
): number {
  return countPrompt(messages, tools).tokens;
}
