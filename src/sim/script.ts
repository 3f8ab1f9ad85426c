/**
 * The simulated model's mind: given the conversation, the offered tools and the directives of the
 * last user message, what does the model say in this round? Pure functions, no I/O.
 *
 * Invariants:
 * - the reply is a function of the inputs only (same request → same reply, same tool call ids);
 * - only tools named in the request's `tools` are ever called; otherwise the reply says so;
 * - a tool call's arguments are a JSON object here (faults break them later, in faults.ts).
 */
import type { Directives } from "./directives.js";
import { shortHash } from "./hash.js";
import type { SimMessage, SimToolCall } from "./request.js";
import { withFiller } from "./tokens.js";

export type Reply = { kind: "text"; text: string } | { kind: "tool_call"; call: SimToolCall };

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
  const wanted = wantedCall(directives, input.userText);
  const toolRounds = directives.rounds ?? (wanted ? 1 : 0);
  const last = messages[messages.length - 1];

  if (position.round === 0 || last?.role !== "tool") {
    if (position.round === 0 && wanted && toolRounds > 0) return callTool(input, wanted);
    return textReply(input, echo(input.userText));
  }

  const answered = answeredCall(messages, last.toolCallId);
  if (answered && TOOL_FAILED.test(last.content) && position.round < CORRECTION_ROUND_LIMIT) {
    return callTool(input, correctedCall(answered, wanted));
  }
  if (wanted && position.round < toolRounds) return callTool(input, wanted);
  const name = answered?.name || wanted?.name || "tool";
  return textReply(input, `Result of ${name}: ${last.content.slice(0, RESULT_PREVIEW_CHARS)}`);
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

function callTool(input: ScriptInput, wanted: WantedCall): Reply {
  if (!input.toolNames.has(wanted.name)) {
    return textReply(input, `I cannot use ${wanted.name}: that tool is not available.`);
  }
  const { turnKey, round } = input.position;
  const id = `call_${shortHash([turnKey, round, 0], CALL_ID_HEX_CHARS)}`;
  return { kind: "tool_call", call: { id, name: wanted.name, arguments: wanted.args } };
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
