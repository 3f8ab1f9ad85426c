/**
 * Parses the `[[sim key=value ...]]` blocks a user message may carry to script the simulator.
 *
 * Grammar (whitespace = any Unicode whitespace):
 *   block := "[[sim" (ws+ pair)* ws* "]]"      -- "[[sim" must be followed by ws or "]"
 *   pair  := key "=" value
 *   key   := [A-Za-z_][A-Za-z0-9_]*
 *   value := balanced "{...}" (only for key "args"; JSON strings may hold braces and spaces)
 *          | any run of non-ws characters up to ws or "]]"
 *
 * Keys: `tool=NAME`, `args={json object}`, `rounds=0..64` (tool rounds before the answer),
 * `calls=1..16` (tool calls per tool round), `reply_tokens=N`, `fault=429|500|hang|cut|
 * broken_tool_json|context_overflow` (`cut`: response headers, then the connection is destroyed
 * before the first token), `fault_times=N`, `retry_after_s=S`, `ttft_ms=MS`, `token_delay_ms=MS`,
 * `summary_fault=429|500|hang|cut|garbage` (applies only to a compaction's summary request).
 *
 * A compaction's summary request quotes the session's messages, directives included; only
 * `summary_fault` (and `fault_times`) apply to it (summaryDirectives), so a session's own
 * directives script its turns and never its summaries by accident.
 *
 * Invariants:
 * - blocks apply in order and later keys win; an unknown key, a malformed token or an invalid
 *   value is ignored (an earlier valid value of that key stays);
 * - an unclosed block is not a directive and stays in the text;
 * - the returned text has every block removed, so heuristics and echoes never see directives.
 */

export const FAULT_KINDS = [
  "429",
  "500",
  "hang",
  "cut",
  "broken_tool_json",
  "context_overflow",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const SUMMARY_FAULT_KINDS = ["429", "500", "hang", "cut", "garbage"] as const;
export type SummaryFaultKind = (typeof SUMMARY_FAULT_KINDS)[number];

export interface Directives {
  tool?: string;
  /** Canonical JSON text of an object. */
  args?: string;
  rounds?: number;
  /** Tool calls per tool round (1..16), all of the wanted tool with the same arguments. */
  calls?: number;
  replyTokens?: number;
  fault?: FaultKind;
  /** A fault of the summary request only; `garbage` answers it with an empty summary. */
  summaryFault?: SummaryFaultKind;
  faultTimes?: number;
  retryAfterS?: number;
  ttftMs?: number;
  tokenDelayMs?: number;
}

export interface ParsedDirectives {
  directives: Directives;
  /** The message text without its directive blocks, trimmed. */
  text: string;
}

const BLOCK_OPEN = "[[sim";
const BLOCK_CLOSE = "]]";
const KEY = /[A-Za-z_][A-Za-z0-9_]*/y;
const WHITESPACE = /\s/;
const TOOL_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_ROUNDS = 64;
const MAX_CALLS = 16;
const MAX_REPLY_TOKENS = 100_000;
const MAX_DELAY_MS = 600_000;
const MAX_RETRY_AFTER_S = 3_600;

export function parseDirectives(message: string): ParsedDirectives {
  const directives: Directives = {};
  const kept: string[] = [];
  let copiedUpTo = 0;
  let from = 0;
  for (;;) {
    const start = message.indexOf(BLOCK_OPEN, from);
    if (start < 0) break;
    from = start + BLOCK_OPEN.length;
    const follower = message[from];
    if (follower === undefined || !(WHITESPACE.test(follower) || follower === "]")) continue;
    const block = parseBlock(message, from);
    if (!block) continue;
    for (const [key, value] of block.pairs) applyPair(directives, key, value);
    kept.push(message.slice(copiedUpTo, start));
    copiedUpTo = block.end;
    from = block.end;
  }
  kept.push(message.slice(copiedUpTo));
  return { directives, text: kept.join(" ").trim() };
}

/** Pairs of the block whose body starts at `i`, and the index after its "]]"; null if unclosed. */
function parseBlock(s: string, i: number): { pairs: [string, string][]; end: number } | null {
  const pairs: [string, string][] = [];
  for (;;) {
    while (i < s.length && WHITESPACE.test(s[i] ?? "")) i++;
    if (i >= s.length) return null;
    if (s.startsWith(BLOCK_CLOSE, i)) return { pairs, end: i + BLOCK_CLOSE.length };
    KEY.lastIndex = i;
    const key = KEY.exec(s)?.[0];
    if (key === undefined || s[i + key.length] !== "=") {
      i = tokenEnd(s, i + 1);
      continue;
    }
    i += key.length + 1;
    const braceEnd = key === "args" && s[i] === "{" ? balancedEnd(s, i) : -1;
    const end = braceEnd > 0 ? braceEnd : tokenEnd(s, i);
    pairs.push([key, s.slice(i, end)]);
    i = end;
  }
}

/** Index of the first whitespace or "]]" at or after `i`. */
function tokenEnd(s: string, i: number): number {
  while (i < s.length && !WHITESPACE.test(s[i] ?? "") && !s.startsWith(BLOCK_CLOSE, i)) i++;
  return i;
}

/** Index after the "}" closing the "{" at `i`, skipping braces inside JSON strings; -1 if none. */
function balancedEnd(s: string, i: number): number {
  let depth = 0;
  let inString = false;
  for (let j = i; j < s.length; j++) {
    const c = s[j];
    if (inString) {
      if (c === "\\") j++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return j + 1;
  }
  return -1;
}

type IntKey =
  | "rounds"
  | "calls"
  | "replyTokens"
  | "faultTimes"
  | "retryAfterS"
  | "ttftMs"
  | "tokenDelayMs";

/** Integer keys: directive name → field and accepted range. */
const INT_KEYS: Record<string, [IntKey, number, number]> = {
  rounds: ["rounds", 0, MAX_ROUNDS],
  calls: ["calls", 1, MAX_CALLS],
  reply_tokens: ["replyTokens", 0, MAX_REPLY_TOKENS],
  fault_times: ["faultTimes", 1, Number.MAX_SAFE_INTEGER],
  retry_after_s: ["retryAfterS", 0, MAX_RETRY_AFTER_S],
  ttft_ms: ["ttftMs", 0, MAX_DELAY_MS],
  token_delay_ms: ["tokenDelayMs", 0, MAX_DELAY_MS],
};

function applyPair(d: Directives, key: string, value: string): void {
  if (key === "tool") {
    if (TOOL_NAME.test(value)) d.tool = value;
  } else if (key === "args") {
    const args = jsonObjectText(value);
    if (args !== undefined) d.args = args;
  } else if (key === "fault") {
    if ((FAULT_KINDS as readonly string[]).includes(value)) d.fault = value as FaultKind;
  } else if (key === "summary_fault") {
    if ((SUMMARY_FAULT_KINDS as readonly string[]).includes(value)) {
      d.summaryFault = value as SummaryFaultKind;
    }
  } else {
    const intKey = INT_KEYS[key];
    const n = intKey && intIn(value, intKey[1], intKey[2]);
    if (intKey && n !== undefined) d[intKey[0]] = n;
  }
}

/** What applies to a compaction's summary request: its own fault, nothing else of the session's. */
export function summaryDirectives(d: Directives): Directives {
  const fault = d.summaryFault;
  return {
    ...(fault !== undefined && fault !== "garbage" ? { fault } : {}),
    ...(fault === "garbage" ? { summaryFault: fault } : {}),
    ...(d.faultTimes !== undefined ? { faultTimes: d.faultTimes } : {}),
  };
}

function intIn(value: string, min: number, max: number): number | undefined {
  if (!/^\d{1,16}$/.test(value)) return undefined;
  const n = Number(value);
  return n >= min && n <= max ? n : undefined;
}

function jsonObjectText(value: string): string | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
      return JSON.stringify(parsed);
    }
  } catch {
    // Not JSON: the directive is ignored like any other invalid value.
  }
  return undefined;
}
