/**
 * Request and response bodies of the v1 turn and session routes. These schemas validate
 * requests, type the handlers and generate the OpenAPI document (src/contract/openapi.ts).
 */
import { z } from "zod";
import { EventEnvelopeSchema } from "../events/envelope.js";
import { TURN_KINDS, TURN_STATUSES } from "../store/port.js";
import { SessionIdSchema, UserIdSchema } from "./ids.js";

/** wunder's limit on one user input (`MAX_USER_INPUT_TEXT_CHARS`). */
export const MAX_INPUT_CHARS = 1_048_576;
const MAX_METADATA_JSON_CHARS = 16_384;
const MAX_METADATA_DEPTH = 16;
const MAX_TOOLS = 64;

export const SubmitTurnRequestSchema = z
  .strictObject({
    input: z.string().min(1, "must not be empty").max(MAX_INPUT_CHARS),
    session_id: SessionIdSchema.optional().describe("omit to start a new session"),
    user_id: UserIdSchema.optional().describe("isolation key for sessions and workspaces"),
    model: z.string().min(1).max(64).optional().describe("a configured model name"),
    on_busy: z
      .enum(["enqueue", "reject"])
      .optional()
      .describe(
        'when the session already has a turn queued or running: "enqueue" (default) runs this one after it, "reject" refuses it with 409',
      ),
    tools: z
      .array(z.string().min(1).max(200))
      .max(MAX_TOOLS)
      .optional()
      .describe(
        "tools the turn may use, by name or display name (`server@tool`), see GET /v1/tools; omit for every tool known now, [] for none",
      ),
    metadata: z
      .record(z.string(), z.unknown())
      .optional()
      .superRefine((m, ctx) => {
        if (m === undefined) return;
        // Depth first: serialising a deeply nested value would overflow the stack.
        if (depthOf(m) > MAX_METADATA_DEPTH) {
          ctx.addIssue({
            code: "custom",
            message: `must nest at most ${MAX_METADATA_DEPTH} levels deep`,
          });
        } else if (JSON.stringify(m).length > MAX_METADATA_JSON_CHARS) {
          ctx.addIssue({
            code: "custom",
            message: `must serialise to at most ${MAX_METADATA_JSON_CHARS} chars of JSON`,
          });
        }
      }),
  })
  .meta({ id: "SubmitTurnRequest" });
export type SubmitTurnRequest = z.infer<typeof SubmitTurnRequestSchema>;

/** Nesting depth of a JSON value, measured without recursion (a hostile body can nest deeply). */
function depthOf(value: unknown): number {
  let deepest = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [unknown, number];
    if (node === null || typeof node !== "object") continue;
    deepest = Math.max(deepest, depth);
    if (deepest > MAX_METADATA_DEPTH) return deepest;
    for (const child of Object.values(node)) stack.push([child, depth + 1]);
  }
  return deepest;
}

export const CompactSessionRequestSchema = z
  .strictObject({
    user_id: UserIdSchema.optional().describe("the session's owner"),
    model: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .describe("the configured model that writes the summary (default: the farm's default)"),
    on_busy: z
      .enum(["enqueue", "reject"])
      .optional()
      .describe(
        'when the session has a turn queued or running: "enqueue" (default) compacts after it, "reject" refuses with 409',
      ),
  })
  .meta({ id: "CompactSessionRequest" });
export type CompactSessionRequest = z.infer<typeof CompactSessionRequestSchema>;

const LinksSchema = z.object({ self: z.string(), events: z.string(), cancel: z.string() });

export const TurnAcceptedSchema = z
  .object({
    turn_id: z.string(),
    session_id: z.string(),
    status: z.enum(TURN_STATUSES),
    links: LinksSchema,
  })
  .meta({ id: "TurnAccepted" });
export type TurnAccepted = z.infer<typeof TurnAcceptedSchema>;

export const UsageSchema = z
  .object({
    input_tokens: z
      .number()
      .int()
      .describe("consumption: prompt tokens billed across every model call of the turn"),
    output_tokens: z
      .number()
      .int()
      .describe("consumption: completion tokens billed across every model call of the turn"),
    total_tokens: z
      .number()
      .int()
      .describe("consumption: input + output, compaction summary calls included"),
    context_tokens: z
      .number()
      .int()
      .describe(
        "occupancy: how full the model's window was after the turn's last call (its prompt + answer)",
      ),
    context_window_tokens: z
      .number()
      .int()
      .optional()
      .describe("the model's window that context_tokens fills"),
    model_calls: z
      .number()
      .int()
      .optional()
      .describe("model calls billed: rounds plus compaction summary calls"),
    compaction_tokens: z
      .number()
      .int()
      .optional()
      .describe("of total_tokens, what compaction summary calls used"),
  })
  .meta({ id: "TurnUsage" });

export const SessionUsageSchema = z
  .object({
    input_tokens: z.number().int(),
    output_tokens: z.number().int(),
    total_tokens: z.number().int(),
    turns: z.number().int().describe("ended turns that reported usage (the sums cover these)"),
    context_tokens: z
      .number()
      .int()
      .describe("occupancy after the session's latest turn with usage (0 before any)"),
  })
  .meta({ id: "SessionUsage" })
  .describe("consumption summed over the session's ended turns, and its current occupancy");

export const TurnViewSchema = z
  .object({
    turn_id: z.string(),
    session_id: z.string(),
    user_id: z.string(),
    status: z.enum(TURN_STATUSES),
    kind: z
      .enum(TURN_KINDS)
      .describe(
        '"agent" runs the agent loop on `input`; "compaction" compacts the session on demand (POST /v1/sessions/{id}/compaction)',
      ),
    model: z.string(),
    created_at: z.iso.datetime(),
    started_at: z.iso.datetime().optional(),
    finished_at: z.iso.datetime().optional(),
    attempt: z
      .number()
      .int()
      .describe(
        "worker starts so far; above 1 after a crash recovery or a wait for a model's budget",
      ),
    answer: z.string().optional(),
    stop_reason: z.string().optional(),
    usage: UsageSchema.optional(),
    error: z.object({ code: z.string(), message: z.string(), retryable: z.boolean() }).optional(),
    cancel_requested: z.boolean().optional(),
    queue_position: z
      .number()
      .int()
      .optional()
      .describe(
        "while queued: turns of other users the fair scheduler dispatches before this one (an estimate; 0 once dispatched to a worker queue)",
      ),
    last_seq: z.number().int().describe("seq of the turn's newest event so far (0 if none)"),
    trace_id: z
      .string()
      .optional()
      .describe("W3C trace id of the request that submitted the turn (its events carry it too)"),
    links: LinksSchema,
  })
  .meta({ id: "Turn" });
export type TurnView = z.infer<typeof TurnViewSchema>;

export const EventPageQuerySchema = z.object({
  format: z.enum(["json", "sse"]).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

export const EventPageSchema = z
  .object({
    events: z.array(EventEnvelopeSchema),
    next_after: z.number().int().describe("pass as `after` to continue"),
    has_more: z.boolean(),
  })
  .meta({ id: "EventPage" });

export const SessionViewSchema = z
  .object({
    session_id: z.string(),
    user_id: z.string(),
    created_at: z.iso.datetime(),
    updated_at: z.iso.datetime(),
    last_seq: z.number().int(),
    usage: SessionUsageSchema,
    turns: z.array(TurnViewSchema).describe("the most recent turns, newest first"),
  })
  .meta({ id: "Session" });
export type SessionView = z.infer<typeof SessionViewSchema>;
