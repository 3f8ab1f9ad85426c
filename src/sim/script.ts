/**
 * The simulated model's mind: given the conversation, the offered tools and the directives of the
 * last user message, what does the model say in this round? Pure functions, no I/O.
 *
 * Invariants:
 * - the reply is a function of the inputs only (same request → same reply, same tool call ids);
 * - only tools the request offers are ever called (its `tools`, or the `<tools>` block of a
 *   text-protocol system prompt: request.ts fills `toolNames` either way); otherwise the reply
 *   says so;
 * - the script never sees the tool protocol: a text-protocol request reaches it with native
 *   `toolCalls` and `tool` messages (text-protocol.ts), and render.ts writes its calls as text;
 * - a tool call's arguments are a JSON object here (faults break them later, in faults.ts);
 * - a tool round makes `calls=N` calls (default 1) of the wanted tool, with the same arguments
 *   and ids distinct per turn, round and call; after the results come back, failed ones are
 *   called again (corrected), else the next tool round or the answer, which quotes every result;
 * - a correction changes the call (e.g. broken JSON → the intended arguments): a failed call is
 *   never repeated as it was, since it would fail the same way.
 */
import { COMPACTION_INSTRUCTION_HEAD } from "../context/compaction/summary-prompt.js";
import type { Directives } from "./directives.js";
import { shortHash } from "./hash.js";
import type { SimMessage, SimToolCall } from "./request.js";
import { withFiller } from "./tokens.js";

export type Reply =
  | { kind: "text"; text: string }
  /** One or more tool calls in one assistant message (never empty). */
  | { kind: "tool_calls"; calls: SimToolCall[] };

/** Where a request sits in its conversation. */
export interface TurnPosition {
  /** Identifies the user turn: the conversation (its first user message) and the turn's index. */
  turnKey: string;
  /** Model round k: assistant messages after the last user message. */
  round: number;
  lastUserContent: string;
}

export interface ScriptInput {
  messages: readonly SimMessage[];
  toolNames: ReadonlySet<string>;
  directives: Directives;
  /** The last user message without its directive blocks. */
  userText: string;
  position: TurnPosition;
}

export const DEFAULT_REPLY_TOKENS = 24;
const RESULT_PREVIEW_CHARS = 300;
const ECHO_WORDS = 12;
/** A failed tool result is retried (the model correcting itself) only in rounds below this. */
const CORRECTION_ROUND_LIMIT = 3;
const TOOL_FAILED = /"ok"\s*:\s*false/;
const CALL_ID_HEX_CHARS = 24;

const RUN_COMMAND = /\brun\s+`([^`]+)`/i;
const READ_PATH = /\bread\s+(?:the\s+)?(?:file\s+)?`?([^\s`]+?)`?[.,;:!?)]*(?:\s|$)/i;
const MENTIONS_FILES = /\b(list|files?|director(y|ies)|folder)\b/i;

interface WantedCall {
  name: string;
  args: string;
}

export function locateTurn(messages: readonly SimMessage[]): TurnPosition {
  let firstUser: SimMessage | undefined;
  let lastUserIndex = -1;
  let userTurns = 0;
  for (const [i, m] of messages.entries()) {
    if (m.role !== "user") continue;
    firstUser ??= m;
    lastUserIndex = i;
    userTurns++;
  }
  let round = 0;
  for (let i = lastUserIndex + 1; i < messages.length; i++) {
    if (messages[i]?.role === "assistant") round++;
  }
  return {
    turnKey: shortHash([firstUser?.content ?? "", userTurns]),
    round,
    lastUserContent: lastUserIndex >= 0 ? (messages[lastUserIndex]?.content ?? "") : "",
  };
}

export function planReply(input: ScriptInput): Reply {
  const { messages, directives, position } = input;
  if (isCompactionRequest(position.lastUserContent)) {
    const garbage = directives.summaryFault === "garbage";
    return { kind: "text", text: garbage ? "" : handOffSummary(position.lastUserContent) };
  }
  const wanted = wantedCall(directives, input.userText);
  const toolRounds = directives.rounds ?? (wanted ? 1 : 0);
  const last = messages[messages.length - 1];
  const roundCalls = wanted ? Array<WantedCall>(directives.calls ?? 1).fill(wanted) : [];

  if (position.round === 0 || last?.role !== "tool") {
    if (position.round === 0 && wanted && toolRounds > 0) return callTools(input, roundCalls);
    return textReply(input, echo(input.userText));
  }

  const results = roundResults(messages).map((result) => ({
    result,
    answered: answeredCall(messages, result.toolCallId),
  }));
  const corrections: WantedCall[] = [];
  for (const { result, answered } of results) {
    if (!answered || !TOOL_FAILED.test(result.content)) continue;
    const corrected = correctedCall(answered, wanted);
    if (corrected.name !== answered.name || corrected.args !== answered.arguments) {
      corrections.push(corrected);
    }
  }
  if (corrections.length > 0 && position.round < CORRECTION_ROUND_LIMIT) {
    return callTools(input, corrections);
  }
  if (wanted && position.round < toolRounds) return callTools(input, roundCalls);
  const summary = results.map(({ result, answered }) => {
    const name = answered?.name || wanted?.name || "tool";
    return `Result of ${name}: ${result.content.slice(0, RESULT_PREVIEW_CHARS)}`;
  });
  return textReply(input, summary.join("\n"));
}

/** The tool messages at the end of the conversation: the results of the last tool round. */
function roundResults(messages: readonly SimMessage[]): SimMessage[] {
  let start = messages.length;
  while (start > 0 && messages[start - 1]?.role === "tool") start--;
  return messages.slice(start);
}

function textReply(input: ScriptInput, prefix: string): Reply {
  const replyTokens = input.directives.replyTokens ?? DEFAULT_REPLY_TOKENS;
  const seedKey = `${input.position.turnKey}:${input.position.round}`;
  return { kind: "text", text: withFiller(prefix, replyTokens, seedKey) };
}

/** The tool this turn is about: from directives, else from the user's words. */
function wantedCall(d: Directives, userText: string): WantedCall | undefined {
  if (d.tool) return { name: d.tool, args: d.args ?? "{}" };
  if (d.rounds !== undefined) return { name: "list_files", args: '{"path":"."}' };
  // Most specific first: "run `ls files`" is a command, not a request to list files.
  const command = RUN_COMMAND.exec(userText)?.[1];
  if (command) return { name: "execute_command", args: JSON.stringify({ command }) };
  const path = READ_PATH.exec(userText)?.[1];
  if (path) return { name: "read_file", args: JSON.stringify({ path }) };
  if (MENTIONS_FILES.test(userText)) return { name: "list_files", args: '{"path":"."}' };
  return undefined;
}

/** One assistant message calling every wanted tool, in order (`wanted` is never empty). */
function callTools(input: ScriptInput, wanted: readonly WantedCall[]): Reply {
  const missing = wanted.find((w) => !input.toolNames.has(w.name));
  if (missing) {
    return textReply(input, `I cannot use ${missing.name}: that tool is not available.`);
  }
  const { turnKey, round } = input.position;
  const calls = wanted.map((w, i) => ({
    id: `call_${shortHash([turnKey, round, i], CALL_ID_HEX_CHARS)}`,
    name: w.name,
    arguments: w.args,
  }));
  return { kind: "tool_calls", calls };
}

/** The assistant tool call that the tool message `toolCallId` answers. */
function answeredCall(
  messages: readonly SimMessage[],
  toolCallId: string | undefined,
): SimToolCall | undefined {
  for (let i = messages.length - 1; i >= 0; i--) {
    const call = messages[i]?.toolCalls.find((c) => c.id === toolCallId);
    if (call) return call;
  }
  return undefined;
}

/** The same tool again, with arguments that parse (the failed call's may be broken JSON). */
function correctedCall(failed: SimToolCall, wanted: WantedCall | undefined): WantedCall {
  if (failed.name === wanted?.name) return wanted;
  return { name: failed.name, args: isJsonObject(failed.arguments) ? failed.arguments : "{}" };
}

function isJsonObject(text: string): boolean {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
  } catch {
    return false;
  }
}

function echo(userText: string): string {
  const words = userText.split(/\s+/).filter((w) => w !== "");
  return words.length === 0
    ? "You asked nothing."
    : `You asked: ${words.slice(0, ECHO_WORDS).join(" ")}.`;
}

/** A farm compaction asks for a hand-off summary of a transcript (see summary-prompt.ts). */
export function isCompactionRequest(lastUserContent: string): boolean {
  return (
    lastUserContent.startsWith("<transcript>") &&
    lastUserContent.includes(COMPACTION_INSTRUCTION_HEAD)
  );
}

const SUMMARY_QUOTE_CHARS = 160;
const SUMMARY_USER_LINES = 3;

/**
 * A short structured summary, deterministic in its input: the sections the instruction asks
 * for, quoting the last user lines of the transcript (what a continuing agent needs most).
 */
function handOffSummary(request: string): string {
  const users = request
    .split("\n")
    .filter((line) => line.startsWith("[user] "))
    .slice(-SUMMARY_USER_LINES)
    .map((line) => `- ${line.slice("[user] ".length, "[user] ".length + SUMMARY_QUOTE_CHARS)}`);
  return [
    "## Goal",
    users.at(-1) ?? "None",
    "## Progress (done, in progress, pending)",
    `Worked through ${request.split("\n").length} transcript lines.`,
    "## Decisions and constraints",
    "None",
    "## Key files, commands and outputs (exact names and values)",
    ...(users.length > 0 ? users : ["None"]),
    "## Next steps",
    "Continue from the latest request.",
  ].join("\n");
}
