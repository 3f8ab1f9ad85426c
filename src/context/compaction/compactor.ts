/**
 * Compaction: makes a model's context fit its budget again, trying three strategies in order.
 *
 * 1. `summary` — an LLM hand-off summary of the older exchanges, keeping the first exchange and
 *    the most recent ones verbatim (each within its token budget) and the current exchange;
 * 2. `trim` — no model call: tool results are capped (halving down to a floor), then the oldest
 *    exchanges are dropped whole (a call never loses its result, nor a result its call);
 * 3. `minimal` — the system messages, the summary if there is one, and the current input cut to
 *    fit; nothing else.
 *
 * Invariants:
 * - the result never exceeds `budget.limitTokens` (with the tool specs), whatever the input: the
 *   minimal context cuts the current input itself if it must;
 * - the result is a valid history: it starts with the system messages, keeps call/result pairs,
 *   and ends with the current exchange (or, minimal, its input);
 * - a failed, hung (bounded by `signal`) or useless summary call falls back to `trim` and says so
 *   (`status: "fallback"`, `summaryError`); compaction itself never throws, except on abort and
 *   on the errors the caller says are its own to handle (`isCallerError`, e.g. a wait for the
 *   model's budget: falling back then would trade a summary for a lossy trim for good).
 */
import type { ContextBudget } from "../budget.js";
import type { ContextMessage } from "../message.js";
import { splitExchanges } from "../normalize.js";
import { capToolResults, cutToTokens, largestToolResult, type TextCounter } from "./shrink.js";
import { summaryMessage, summaryRequest } from "./summary-prompt.js";

export type CompactionStrategy = "summary" | "trim" | "minimal";

export interface CompactionSettings {
  /** The first exchange is kept verbatim up to this many tokens. */
  keepHeadTokens: number;
  /** The most recent earlier exchanges are kept verbatim up to this many tokens. */
  keepTailTokens: number;
  /** Longest summary kept. */
  summaryMaxTokens: number;
  /** Tool results are never cut below this while trimming. */
  observationMinTokens: number;
  /** Compaction aims at this share of the limit, so the next rounds have room. */
  goalRatio: number;
}

export interface Counters {
  /** Calibrated prompt tokens of a message list (without tool specs). */
  messages(messages: readonly ContextMessage[]): number;
  text: TextCounter;
}

export interface CompactionInput {
  messages: readonly ContextMessage[];
  /** Tokens of the tool specs sent with every request. */
  toolsTokens: number;
  budget: ContextBudget;
  settings: CompactionSettings;
  count: Counters;
  /** Runs the summary call; `null` skips strategy 1 (e.g. nothing to summarise). */
  summarize: ((request: ContextMessage[]) => Promise<string>) | null;
  /** Skip the summary and start at `trim` (e.g. the summary already failed this round). */
  noSummary?: boolean;
  /** Summary-call errors that stop the compaction (rethrown) instead of falling back. */
  isCallerError?: (err: unknown) => boolean;
}

export interface CompactionResult {
  messages: ContextMessage[];
  strategy: CompactionStrategy;
  status: "done" | "fallback";
  tokensBefore: number;
  tokensAfter: number;
  summary: ContextMessage | null;
  summaryError?: string;
  /** Time spent in the summary call (0 without one): the rest is compaction's own cost. */
  summaryMs: number;
  /** Items of the input still present (verbatim or cut) in the result. */
  retainedItems: number;
}

export async function compact(input: CompactionInput): Promise<CompactionResult> {
  const { budget, count } = input;
  const tokensBefore = count.messages(input.messages) + input.toolsTokens;
  const hardLimit = budget.limitTokens - input.toolsTokens;
  const goal = Math.min(
    hardLimit,
    Math.floor(budget.limitTokens * input.settings.goalRatio) - input.toolsTokens,
  );
  const system = input.messages.filter((m) => m.role === "system");
  const exchanges = splitExchanges(input.messages.filter((m) => m.role !== "system"));
  const current = exchanges.at(-1) ?? [];
  const older = exchanges.slice(0, -1);

  let summaryMs = 0;
  const finish = (
    messages: ContextMessage[],
    strategy: CompactionStrategy,
    summary: ContextMessage | null,
    summaryError?: string,
  ): CompactionResult => ({
    messages,
    strategy,
    status: summaryError !== undefined ? "fallback" : "done",
    tokensBefore,
    tokensAfter: count.messages(messages) + input.toolsTokens,
    summary,
    ...(summaryError !== undefined ? { summaryError } : {}),
    summaryMs,
    retainedItems: messages.length - (summary && messages.includes(summary) ? 1 : 0),
  });

  let summaryError: string | undefined;
  if (input.summarize && !input.noSummary && older.length > 0) {
    const summarize = input.summarize;
    const timed: CompactionInput = {
      ...input,
      summarize: async (request) => {
        const started = performance.now();
        try {
          return await summarize(request);
        } finally {
          summaryMs += performance.now() - started;
        }
      },
    };
    try {
      const summarized = await summaryStrategy(timed, system, older, current, hardLimit, goal);
      if (typeof summarized !== "string") {
        return finish(summarized.messages, "summary", summarized.summary);
      }
      summaryError = summarized;
    } catch (err) {
      const aborted =
        (err as Error).name === "AbortError" || (err as { kind?: string }).kind === "aborted";
      if (aborted || input.isCallerError?.(err)) throw err;
      summaryError = (err as Error).message;
    }
  }
  const trimmed = trimStrategy(input, system, older, current, goal, hardLimit);
  if (trimmed) return finish(trimmed, "trim", null, summaryError);
  return finish(
    minimalStrategy(input, system, current, null, hardLimit),
    "minimal",
    null,
    summaryError,
  );
}

async function summaryStrategy(
  input: CompactionInput,
  system: ContextMessage[],
  older: ContextMessage[][],
  current: ContextMessage[],
  hardLimit: number,
  goal: number,
): Promise<{ messages: ContextMessage[]; summary: ContextMessage } | string> {
  const { count, settings } = input;
  const head = older[0] && count.messages(older[0]) <= settings.keepHeadTokens ? older[0] : [];
  const tail: ContextMessage[][] = [];
  let tailTokens = 0;
  for (let i = older.length - 1; i >= (head.length > 0 ? 1 : 0); i--) {
    const exchange = older[i] as ContextMessage[];
    const tokens = count.messages(exchange);
    if (tailTokens + tokens > settings.keepTailTokens) break;
    tail.unshift(exchange);
    tailTokens += tokens;
  }
  const source = older.slice(head.length > 0 ? 1 : 0, older.length - tail.length).flat();
  const summarized = source.length > 0 ? source : older.flat();
  const requestBudget = input.budget.limitTokens - settings.summaryMaxTokens;
  const answer = await (input.summarize as (r: ContextMessage[]) => Promise<string>)(
    summaryRequest(summarized, requestBudget, count.text),
  );
  const summary = summaryMessage(answer, settings.summaryMaxTokens, count.text);
  if (!summary) return "the summary was empty or too short";
  const keptTail = source.length > 0 ? tail.flat() : [];
  const candidates = [
    [...system, ...head, summary, ...keptTail, ...current],
    [...system, summary, ...keptTail, ...current],
    [...system, summary, ...current],
  ];
  // The first candidate that fits and is smaller than what it replaces: a summary longer than
  // a short history it stands for is no compaction.
  const before = count.messages(input.messages);
  for (const candidate of candidates) {
    const fitted = fitObservations(candidate, goal, hardLimit, input);
    if (fitted && count.messages(fitted) < before) return { messages: fitted, summary };
  }
  const minimal = minimalStrategy(input, system, current, summary, hardLimit);
  return count.messages(minimal) < before && minimal.includes(summary)
    ? { messages: minimal, summary }
    : "the summary did not make the context smaller";
}

/** Caps tool results until `messages` fits `goal` (or at least `hardLimit`); null if it cannot. */
function fitObservations(
  messages: ContextMessage[],
  goal: number,
  hardLimit: number,
  input: CompactionInput,
): ContextMessage[] | null {
  const { count, settings } = input;
  if (count.messages(messages) <= goal) return messages;
  let cap = largestToolResult(messages, count.text);
  let shrunk = messages;
  while (cap > settings.observationMinTokens) {
    cap = Math.max(settings.observationMinTokens, Math.floor(cap / 2));
    shrunk = capToolResults(messages, cap, count.text);
    if (count.messages(shrunk) <= goal) return shrunk;
  }
  return count.messages(shrunk) <= hardLimit ? shrunk : null;
}

function trimStrategy(
  input: CompactionInput,
  system: ContextMessage[],
  older: ContextMessage[][],
  current: ContextMessage[],
  goal: number,
  hardLimit: number,
): ContextMessage[] | null {
  for (let drop = 0; drop <= older.length; drop++) {
    const candidate = [...system, ...older.slice(drop).flat(), ...current];
    const fitted = fitObservations(
      candidate,
      goal,
      drop === older.length ? hardLimit : goal,
      input,
    );
    if (fitted) return fitted;
  }
  return null;
}

/** System messages, the summary if any, and the current input, cut until it all fits. */
function minimalStrategy(
  input: CompactionInput,
  system: ContextMessage[],
  current: ContextMessage[],
  summary: ContextMessage | null,
  hardLimit: number,
): ContextMessage[] {
  const { count } = input;
  const userInput = current.find((m) => m.role === "user") ?? { role: "user", content: "" };
  let base = [...system, ...(summary ? [summary] : [])];
  // The summary stays unless it would leave the input less than half of the room.
  if (summary && count.messages(base) > hardLimit / 2) base = [...system];
  const room = hardLimit - count.messages([...base, { role: "user", content: "" }]);
  const content = cutToTokens(userInput.content, Math.max(0, room), count.text);
  const cutInput: ContextMessage =
    content === userInput.content ? userInput : { role: "user", content };
  const result = [...base, cutInput];
  if (count.messages(result) <= hardLimit) return result;
  // Even the system prompt does not fit: the input alone, cut to the limit.
  return [{ role: "user", content: cutToTokens(userInput.content, hardLimit - 16, count.text) }];
}
