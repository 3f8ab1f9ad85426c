/**
 * The OpenAPI 3.1 document of API v1, generated from the same zod schemas that validate requests.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";
import { QueueOverviewSchema, TurnMonitorViewSchema } from "./admin.js";
import { BucketListSchema, BucketParamsSchema, BucketViewSchema } from "./buckets.js";
import { ErrorEnvelopeSchema } from "./errors.js";
import { ToolListSchema, ToolRefreshAcceptedSchema } from "./tools.js";
import {
  CompactSessionRequestSchema,
  EventPageQuerySchema,
  EventPageSchema,
  SessionViewSchema,
  SubmitTurnRequestSchema,
  TurnAcceptedSchema,
  TurnViewSchema,
} from "./turns.js";

const json = (schema: z.ZodType, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
const error = (description: string) => json(ErrorEnvelopeSchema, description);
const idParam = (what: string) => z.object({ id: z.string().describe(`${what} id`) });

function buildDocument() {
  const registry = new OpenAPIRegistry();

  registry.registerPath({
    method: "post",
    path: "/v1/turns",
    summary: "Submit an agent turn",
    request: {
      headers: z.object({
        "Idempotency-Key": z
          .string()
          .optional()
          .describe("same key + same body → same turn, for 24 h"),
      }),
      body: { content: { "application/json": { schema: SubmitTurnRequestSchema } } },
    },
    responses: {
      200: {
        description:
          "with `Accept: text/event-stream`: the turn's events as SSE, from `queued` to " +
          "`turn_terminal` (headers X-Turn-Id, X-Session-Id, Location)",
        content: { "text/event-stream": { schema: z.string() } },
      },
      202: json(
        TurnAcceptedSchema,
        "accepted and queued (or the turn an earlier request with this key created)",
      ),
      400: error("invalid JSON, wrong types, unknown model or tool (details list the fields)"),
      404: error("session_id names a session of another user"),
      413: error("input longer than 1,048,576 chars, or body too large"),
      415: error("body is not application/json"),
      409: error('on_busy "reject" and the session has a turn queued or running'),
      422: error("Idempotency-Key reused with a different body"),
      429: error("the user already has its maximum of waiting turns (Retry-After)"),
      503: error("the farm is overloaded, or Redis or the store is unavailable (Retry-After)"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/turns/{id}",
    summary: "Read a turn",
    request: { params: idParam("turn") },
    responses: { 200: json(TurnViewSchema, "the turn"), 404: error("unknown turn") },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/turns/{id}/events",
    summary: "Stream the turn's events (SSE), or read a page of them with format=json",
    request: {
      params: idParam("turn"),
      query: EventPageQuerySchema,
      headers: z.object({
        "Last-Event-ID": z.string().optional().describe("resume after this seq"),
      }),
    },
    responses: {
      200: {
        description:
          "text/event-stream (frames `id: seq`, `event: type`, `data: envelope`), or an EventPage",
        content: {
          "text/event-stream": { schema: z.string() },
          "application/json": { schema: EventPageSchema },
        },
      },
      204: { description: "the turn ended at or before the resume point; nothing more will come" },
      400: error("invalid query or Last-Event-ID"),
      404: error("unknown turn"),
    },
  });
  registry.registerPath({
    method: "post",
    path: "/v1/turns/{id}/cancel",
    summary: "Cancel a turn (idempotent)",
    request: { params: idParam("turn") },
    responses: {
      200: json(TurnViewSchema, "the turn has ended (cancelled now, or had already finished)"),
      202: json(TurnViewSchema, "cancel requested; the turn is still stopping"),
      404: error("unknown turn"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/admin/queues",
    summary: "Scheduler state: counts, ages, busiest users, workers, refusals, model budgets",
    description:
      "Needs `Authorization: Bearer <ADMIN_TOKEN>` when ADMIN_TOKEN is set; otherwise answers local clients only.",
    responses: {
      200: json(QueueOverviewSchema, "the scheduler's state now"),
      401: error("missing or wrong admin token"),
      403: error("no admin token configured and the client is not local"),
    },
  });
  const adminErrors = {
    401: error("missing or wrong admin token"),
    403: error("no admin token configured and the client is not local"),
  };
  registry.registerPath({
    method: "get",
    path: "/v1/admin/monitor",
    summary: "Running turns now: stage, tools, elapsed time, time to first token, token speeds",
    description:
      "What the workers report of every running turn attempt (updated at most every 500 ms " +
      "per turn; a dead worker's entries drop out within 10 s), longest running first.",
    responses: { 200: json(TurnMonitorViewSchema, "the running turns"), ...adminErrors },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/admin/buckets",
    summary: "Event buckets: status, event counts, retention due dates, archives",
    responses: { 200: json(BucketListSchema, "every event bucket, oldest first"), ...adminErrors },
  });
  for (const [op, summary] of [
    ["archive", "Archive a closed bucket now: export, verify, drop its events"],
    ["restore", "Restore an archived bucket from its archive"],
  ] as const) {
    registry.registerPath({
      method: "post",
      path: `/v1/admin/buckets/{name}/${op}`,
      summary,
      request: { params: BucketParamsSchema },
      responses: {
        200: json(BucketViewSchema, `the bucket once ${op}d`),
        400: error("not a bucket name"),
        404: error("unknown bucket"),
        409: error(`the bucket's status does not allow this (e.g. still open, already ${op}d)`),
        500: error("the archive failed verification (archive_invalid); nothing was dropped"),
        ...adminErrors,
      },
    });
  }
  registry.registerPath({
    method: "get",
    path: "/v1/tools",
    summary: "The tool catalogue: every tool a turn can use, its schema and availability",
    responses: { 200: json(ToolListSchema, "built-in tools and the tools of every MCP server") },
  });
  registry.registerPath({
    method: "post",
    path: "/v1/admin/tools/refresh",
    summary: "Ask every worker to list its MCP servers' tools again now",
    responses: { 202: json(ToolRefreshAcceptedSchema, "the request went out"), ...adminErrors },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/sessions/{id}",
    summary: "Read a session and its recent turns",
    request: { params: idParam("session") },
    responses: { 200: json(SessionViewSchema, "the session"), 404: error("unknown session") },
  });
  registry.registerPath({
    method: "post",
    path: "/v1/sessions/{id}/compaction",
    summary: "Compact the session's context now",
    description:
      "Queues a turn of kind `compaction`: a worker summarises the session's older exchanges " +
      "(falling back to trimming), emits a `compaction` event and saves the result as the " +
      "session's snapshot, so later turns start from it. On a busy session it runs after the " +
      "turn in progress. Poll or stream it like any turn; it ends with stop_reason " +
      "`compacted` or `nothing_to_compact`.",
    request: {
      params: idParam("session"),
      headers: z.object({
        "Idempotency-Key": z
          .string()
          .optional()
          .describe("same key + same body → same compaction, for 24 h"),
      }),
      body: {
        required: false,
        content: { "application/json": { schema: CompactSessionRequestSchema } },
      },
    },
    responses: {
      202: json(TurnAcceptedSchema, "accepted and queued"),
      400: error("wrong types or unknown model (details list the fields)"),
      404: error("unknown session, or a session of another user"),
      409: error('on_busy "reject" and the session has a turn queued or running'),
      415: error("a body that is not application/json"),
      422: error("Idempotency-Key reused with a different body"),
      429: error("the user already has its maximum of waiting turns (Retry-After)"),
      503: error("the farm is overloaded, or Redis or the store is unavailable (Retry-After)"),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/v1/sessions/{id}/events",
    summary: "A page of the session's event log",
    request: { params: idParam("session"), query: EventPageQuerySchema.omit({ format: true }) },
    responses: {
      200: json(EventPageSchema, "events after `after`, ascending"),
      404: error("unknown session"),
    },
  });

  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: "3.1.0",
    info: { title: "wunder-farm API", version: "1" },
  });
}

let cached: ReturnType<typeof buildDocument> | null = null;

export function openApiDocument() {
  cached ??= buildDocument();
  return cached;
}
