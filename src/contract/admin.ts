/**
 * Response body of the operator routes (`/v1/admin/…`); also generates their OpenAPI part.
 */
import { z } from "zod";

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
