/**
 * Event envelope v1: what every reader (SSE, JSON pages, the store, turn resume) sees.
 *
 * Invariants:
 * - `seq` is per session, starts at 1 and grows by exactly 1 per event, with no gaps;
 * - a turn's last event is its single `turn_terminal`;
 * - the envelope is serialised once, by the emitter, and never re-serialised: the store keeps the
 *   same bytes live readers got.
 */
import { z } from "zod";

export const ENVELOPE_VERSION = 1;

/** wunder's vocabulary, so a wunder compatibility layer stays a thin mapping. */
export const EVENT_TYPES = [
  "queued",
  "progress",
  "context_usage",
  "llm_output_delta",
  "llm_stream_retry",
  "llm_output",
  "token_usage",
  "tool_call",
  "tool_output_delta",
  "tool_result",
  "compaction",
  "approval_request",
  "approval_result",
  "round_usage",
  "final",
  "error",
  "turn_terminal",
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const EventEnvelopeSchema = z
  .object({
    v: z.literal(ENVELOPE_VERSION),
    seq: z.number().int().positive(),
    session_id: z.string(),
    turn_id: z.string(),
    user_id: z.string(),
    type: z.enum(EVENT_TYPES),
    ts: z.number().int().describe("epoch milliseconds"),
    trace_id: z.string().optional(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: "EventEnvelope" });
export type EventEnvelope = z.infer<typeof EventEnvelopeSchema>;
