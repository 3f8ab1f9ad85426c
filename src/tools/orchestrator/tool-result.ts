/**
 * The one result format of every tool call, and the model's view of it.
 *
 * Invariants:
 * - the model sees `{ok, data, error?}` as compact JSON; beyond `maxChars` it sees the head and
 *   the tail with a marker in between saying how many chars were cut and which artifact holds
 *   the whole (Codex and wunder both cut in the middle: the start says what ran, the end how
 *   it ended);
 * - a recorded result yields exactly the text the model saw when it was recorded (`preview` holds
 *   that text when it was cut), so a resumed turn shows the model the same thing;
 * - `meta.output_chars` counts what the model got and `meta.original_chars` what the tool produced.
 */
import { createHash } from "node:crypto";
import type { BreakerState } from "./call-policy.js";

export interface ToolResultMeta {
  duration_ms: number;
  attempts: number;
  exit_code?: number;
  /** The tool cut its own output, or the model's view was cut, or both. */
  truncated: boolean;
  output_chars: number;
  original_chars: number;
  timed_out?: boolean;
  aborted?: boolean;
  /** The source's breaker after the call, when it is not closed. */
  breaker?: BreakerState;
  policy?: { timeout_ms: number; idempotent: boolean; lock: "shared" | "exclusive" };
}

export interface ArtifactRef {
  id: string;
  size_bytes: number;
  sha256: string;
}

/** What a `tool_result` event (version TOOL_RESULT_VERSION, see docs/events.md) records about one call. */
export interface ToolResultRecord {
  ok: boolean;
  /** The tool's data; null when it was too long for the model (then see `preview`, `artifact`). */
  data: unknown;
  error?: string;
  /** The cut text the model saw, when the whole was too long. */
  preview?: string;
  artifact?: ArtifactRef;
  meta?: ToolResultMeta;
}

export interface Observation {
  text: string;
  truncated: boolean;
  originalChars: number;
}

/** The model's view of a result given its full JSON text. */
export function observe(fullText: string, maxChars: number, artifactId?: string): Observation {
  if (fullText.length <= maxChars) {
    return { text: fullText, truncated: false, originalChars: fullText.length };
  }
  const half = Math.floor(maxChars / 2);
  const omitted = fullText.length - 2 * half;
  const where = artifactId ? `; the whole output is artifact ${artifactId}` : "";
  const marker = `\n…[${omitted} of ${fullText.length} chars omitted${where}]…\n`;
  return {
    text: fullText.slice(0, half) + marker + fullText.slice(fullText.length - half),
    truncated: true,
    originalChars: fullText.length,
  };
}

export function resultText(result: { ok: boolean; data: unknown; error?: string }): string {
  return JSON.stringify({
    ok: result.ok,
    data: result.data,
    ...(result.error !== undefined ? { error: result.error } : {}),
  });
}

/** What the model is shown for a recorded result (v1 records have no preview). */
export function observationOf(record: ToolResultRecord, maxChars: number): string {
  return record.preview ?? observe(resultText(record), maxChars).text;
}

/** A stable artifact id for one call of one turn (call ids repeat across rounds with some models). */
export function artifactIdFor(turnId: string, round: number, callId: string): string {
  const digest = createHash("sha256")
    .update(`${turnId}\u0000${round}\u0000${callId}`)
    .digest("hex");
  return `art_${digest.slice(0, 24)}`;
}
