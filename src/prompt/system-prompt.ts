/**
 * The session's system prompt: written once, when a session's first turn runs, into the
 * session's history, and never again — so it is frozen for the life of the session. A later
 * change of `turn.systemPrompt` applies to new sessions only, and a long session keeps a stable
 * prompt prefix (the part providers cache).
 *
 * Invariants:
 * - only a session with no history and no snapshot gets one (a session started before the
 *   setting existed keeps its history as it was);
 * - an empty setting means no system prompt.
 */
import type { ContextMessage } from "../context/message.js";

/** What an agent of the farm is told when nothing else is configured. */
export const DEFAULT_SYSTEM_PROMPT = [
  "You are an agent working for the user in a private workspace folder.",
  "Use the tools you are given to inspect files, run commands and make changes; prefer reading before writing, and check the results of what you run.",
  "Paths are relative to the workspace. When a tool fails, read its error and correct the call instead of repeating it.",
  "When the task is done, answer briefly with what you did and what you found.",
].join("\n");

export interface SessionStart {
  /** Items already in the session's history. */
  historyLength: number;
  /** The session already has a snapshot (its history was compacted or checkpointed). */
  hasSnapshot: boolean;
}

/** The system message a turn writes first into its session's history, or null. */
export function sessionSystemPrompt(
  session: SessionStart,
  configured: string,
): ContextMessage | null {
  if (session.historyLength > 0 || session.hasSnapshot || configured === "") return null;
  return { role: "system", content: configured };
}
