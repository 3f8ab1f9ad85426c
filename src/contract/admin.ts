/**
 * Response body of the operator routes (`/v1/admin/…`); also generates their OpenAPI part.
 */
import { z } from "zod";
import { TURN_KINDS } from "../store/port.js";

const count = z.number().int().min(0);

export const ModelBudgetViewSchema = z.object({
  model: z.string(),
  limits: z.object({
    requests_per_minute: count.optional(),
    tokens_per_minute: count.optional(),
    max_concurrency: count.optional(),
  }),
  requests_this_minute: count,
  tokens_this_minute: count,
  in_flight: count,
  cooldown_remaining_ms: count.describe("calls held after a provider 429; 0 when none"),
});

export const QueueOverviewSchema = z
  .object({
    at: z.iso.datetime(),
    counts: z.object({
      waiting: count.describe("admitted, in the users' fair FIFOs"),
      dispatched: count.describe("handed to BullMQ, not yet taken by a worker"),
      active: count.describe("in a worker slot"),
      parked: count.describe("delayed: waiting for a model's budget (or a session lease)"),
      failed_jobs: count.describe("BullMQ jobs that failed for good (kept for inspection)"),
    }),
    oldest_waiting_age_ms: count.nullable().describe("oldest turn still waiting for dispatch"),
    oldest_runnable_age_ms: count
      .nullable()
      .describe("oldest turn that could run now but waits for a worker (the overload signal)"),
    users: z.object({
      with_waiting: count,
      with_running: count,
      runnable: count.describe("users with a turn that could be dispatched now"),
    }),
    busiest_users: z
      .array(
        z.object({
          user_id: z.string(),
          tier: z.string(),
          weight: z.number(),
          queued: count,
          running: count,
        }),
      )
      .describe("users with the most waiting turns, then the most running"),
    workers: z.object({ live: count, capacity: count.describe("sum of their concurrency") }),
    rejections: z.record(z.string(), count).describe("refused submits by reason, farm-wide"),
    models: z.array(ModelBudgetViewSchema),
  })
  .meta({ id: "QueueOverview" });
export type QueueOverview = z.infer<typeof QueueOverviewSchema>;

/**
 * What a running turn attempt is doing, as `GET /v1/admin/monitor` reports it (turn-activity.ts
 * derives it from the turn's events).
 */
export const MONITOR_STAGES = [
  "starting",
  "waiting_for_model",
  "model_call",
  "streaming",
  "retrying",
  "tool_calls",
  "preparing",
  "compacting",
  "finishing",
  "parked",
] as const;
export type MonitorStage = (typeof MONITOR_STAGES)[number];

const ms = count.describe("milliseconds");
const tokensPerS = z.number().min(0).nullable();

export const MonitoredTurnSchema = z
  .object({
    turn_id: z.string(),
    session_id: z.string(),
    user_id: z.string(),
    kind: z.enum(TURN_KINDS),
    model: z.string(),
    attempt: z.number().int().min(1),
    trace_id: z.string().nullable(),
    stage: z
      .enum(MONITOR_STAGES)
      .describe(
        "starting: loading the session; waiting_for_model: for the model's budget, in the worker " +
          "slot; model_call: request sent, no token yet; streaming: tokens arriving; retrying: " +
          "backing off after a failed call; tool_calls: tools running (see `tools`); preparing: " +
          "building the next request (may compact the context); compacting: a compaction turn " +
          "at work; finishing: storing the outcome; parked: leaving the slot to wait for budget",
      ),
    tools: z.array(z.string()).describe("the tools running now, one entry per call"),
    started_at: z.iso.datetime().describe("when this attempt started on its worker"),
    elapsed_ms: ms.describe("since started_at"),
    stage_elapsed_ms: ms.describe("time in the current stage"),
    round: count.describe("model round of the turn; 0 before the first call"),
    model_calls: count.describe("model calls this attempt finished"),
    ttft_ms: count
      .nullable()
      .describe("time to first token of the current call once it streamed, else of the last one"),
    output_tokens: count.describe(
      "output tokens of this attempt: provider-reported, plus an estimate for a call streaming now",
    ),
    output_tokens_per_s: z.object({
      last_call: tokensPerS.describe("the streaming call's live rate, else the last call's"),
      turn: tokensPerS.describe("over every streamed call of this attempt"),
    }),
    prompt_tokens: count
      .nullable()
      .describe("prompt of the current or last call: reported by the provider, else projected"),
    worker: z.object({ id: z.string(), host: z.string() }),
    updated_at: z.iso.datetime().describe("when the worker last published this entry"),
  })
  .meta({ id: "MonitoredTurn" });
export type MonitoredTurn = z.infer<typeof MonitoredTurnSchema>;

export const TurnMonitorViewSchema = z
  .object({
    at: z.iso.datetime(),
    running: count.describe("turn attempts live workers report"),
    by_stage: z.record(z.enum(MONITOR_STAGES), count),
    turns: z.array(MonitoredTurnSchema).describe("longest running first"),
  })
  .meta({ id: "TurnMonitor" });
export type TurnMonitorView = z.infer<typeof TurnMonitorViewSchema>;
