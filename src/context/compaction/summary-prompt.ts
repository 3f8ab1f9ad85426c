/**
 * The summary call of a compaction: the hand-off instruction (wunder's and Codex's structured
 * checkpoint), the transcript of what is being summarised, and the checks a summary must pass.
 *
 * Invariants:
 * - the request is one system message and one user message (transcript + instruction, the
 *   instruction last), so it has no tool calls to pair and no directives of the session's own
 *   messages reach a simulator or a provider as instructions;
 * - the transcript fits `maxTokens`: every item is capped, then the oldest lines go first;
 * - a summary is kept only if it is long enough to carry something and fits its own budget.
 */
import type { ContextMessage } from "../message.js";
import { cutToTokens, type TextCounter } from "./shrink.js";

/** Marks the summary message: later compactions and the simulator recognise it. */
export const SUMMARY_PREFIX = "[Context Summary]";
/** First line of the instruction; the simulator answers such requests with a summary. */
export const COMPACTION_INSTRUCTION_HEAD = "CONTEXT CHECKPOINT COMPACTION";

const SYSTEM_PROMPT =
  "You summarise a conversation between a user and an AI agent that uses tools, so that another " +
  "agent can continue the work from the summary alone.";

const INSTRUCTION = `${COMPACTION_INSTRUCTION_HEAD}
Write a hand-off summary of the conversation above for the agent that continues it. Ground every
statement in the transcript; write "None" for an empty section. Use exactly these sections:
## Goal
## Progress (done, in progress, pending)
## Decisions and constraints
## Key files, commands and outputs (exact names and values)
## Next steps`;

/** Per-item cap in the transcript: one huge tool output must not crowd out everything else. */
const ITEM_MAX_TOKENS = 1_024;
const MIN_SUMMARY_CHARS = 16;

export function summaryRequest(
  source: readonly ContextMessage[],
  maxTokens: number,
  count: TextCounter,
): ContextMessage[] {
  const instructionTokens = count(INSTRUCTION) + count(SYSTEM_PROMPT);
  const lines = source.map((m) => cutToTokens(transcriptLine(m), ITEM_MAX_TOKENS, count));
  let budget = maxTokens - instructionTokens;
  const kept: string[] = [];
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] as string;
    const tokens = count(line) + 1;
    if (tokens > budget) break;
    kept.unshift(line);
    budget -= tokens;
  }
  const omitted = lines.length - kept.length;
  const transcript = [...(omitted > 0 ? [`(${omitted} older items omitted)`] : []), ...kept].join(
    "\n",
  );
  return [
    { role: "system", content: SYSTEM_PROMPT },
    { role: "user", content: `<transcript>\n${transcript}\n</transcript>\n\n${INSTRUCTION}` },
  ];
}

/** The summary as a history item, or null when the model's answer is no usable summary. */
export function summaryMessage(
  answer: string,
  maxTokens: number,
  count: TextCounter,
): ContextMessage | null {
  const text = answer.trim();
  if (text.replace(/\W/gu, "").length < MIN_SUMMARY_CHARS) return null;
  const content = cutToTokens(`${SUMMARY_PREFIX}\n${text}`, maxTokens, count);
  return { role: "user", content, summary: true };
}

function transcriptLine(m: ContextMessage): string {
  switch (m.role) {
    case "system":
      return `[system] ${m.content}`;
    case "user":
      return m.summary ? `[earlier summary] ${m.content}` : `[user] ${m.content}`;
    case "assistant": {
      const calls = (m.tool_calls ?? []).map((c) => `${c.name}(${c.arguments})`).join("; ");
      return `[assistant] ${m.content}${calls ? ` [calls: ${calls}]` : ""}`;
    }
    case "tool":
      return `[tool result ${m.tool_call_id}] ${m.content}`;
  }
}
