/**
 * /v1/turns: submit, read, stream or page events, cancel.
 * Handlers validate and translate; the turn services in src/turn do the work.
 */
import { type Request, Router } from "express";
import { FarmError, fieldIssues, notFound, validationError } from "../../src/contract/errors.js";
import {
  EventPageQuerySchema,
  MAX_INPUT_CHARS,
  SubmitTurnRequestSchema,
} from "../../src/contract/turns.js";
import type { LogEvent } from "../../src/events/event-log.js";
import { isTerminal, type TurnRecord } from "../../src/store/port.js";
import { cancelTurn } from "../../src/turn/cancel.js";
import { submitTurn } from "../../src/turn/submit.js";
import { toTurnView, turnLastSeq, turnLinks } from "../../src/turn/view.js";
import type { ApiContext } from "../context.js";
import { TurnStream } from "../turn-stream.js";

const PAGE_SCAN_EVENTS = 1_000;

export function turnRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.post("/v1/turns", async (req, res) => {
    if (!req.is("application/json")) {
      throw new FarmError(415, "unsupported_media_type", "send the body as application/json");
    }
    const parsed = SubmitTurnRequestSchema.safeParse(req.body);
    if (!parsed.success) {
      const input = (req.body as { input?: unknown } | undefined)?.input;
      if (typeof input === "string" && input.length > MAX_INPUT_CHARS) {
        throw new FarmError(
          413,
          "input_too_large",
          `input has ${input.length} chars; the limit is ${MAX_INPUT_CHARS}`,
          {
            details: { field: "input", max_chars: MAX_INPUT_CHARS, actual_chars: input.length },
          },
        );
      }
      throw validationError(fieldIssues(parsed.error));
    }
    const key = req.get("Idempotency-Key");
    if (!wantsEventStream(req)) {
      const { accepted, replayed } = await submitTurn(ctx, parsed.data, key);
      if (replayed) res.setHeader("Idempotent-Replayed", "true");
      res.setHeader("Location", accepted.links.self);
      res.status(202).json(accepted);
      return;
    }
    // Submit and stream in one request (as wunder's `stream: true`). The stream opens with the
    // `queued` event as soon as it exists, while the turn is still being admitted.
    let stream: TurnStream | null = null;
    let cursor: number | null = null;
    const start = (turnId: string, sessionId: string) => {
      res.setHeader("Location", turnLinks(turnId).self);
      res.setHeader("X-Turn-Id", turnId);
      res.setHeader("X-Session-Id", sessionId);
      stream = TurnStream.open(ctx, res);
      return stream;
    };
    let submitted: Awaited<ReturnType<typeof submitTurn>>;
    try {
      submitted = await submitTurn(ctx, parsed.data, key, {
        onQueued: (queued, event) => {
          void start(queued.id, queued.sessionId).write([event]);
          cursor = event.seq;
        },
      });
    } catch (err) {
      if (!stream) throw err;
      // The turn exists and is queued; the reconciler admits it. Clients resume with GET.
      ctx.logger.warn("turn accepted but not yet admitted", { error: (err as Error).message });
      (stream as TurnStream).end();
      return;
    }
    const { turn, replayed } = submitted;
    if (replayed) res.setHeader("Idempotent-Replayed", "true");
    const opened = stream ?? start(turn.id, turn.sessionId);
    await opened.follow(turn, cursor ?? startCursor(turn, undefined, undefined));
  });

  router.get("/v1/turns/:id", async (req, res) => {
    const turn = await findTurn(ctx, req.params.id);
    const cancelRequested =
      !isTerminal(turn.status) && (await ctx.redis.exists(ctx.keys.turnCancel(turn.id))) === 1;
    res.json(toTurnView(turn, await turnLastSeq(ctx.redis, ctx.keys, turn), cancelRequested));
  });

  router.post("/v1/turns/:id/cancel", async (req, res) => {
    const turn = await cancelTurn(ctx, req.params.id);
    const view = toTurnView(turn, await turnLastSeq(ctx.redis, ctx.keys, turn), true);
    res.status(isTerminal(turn.status) ? 200 : 202).json(view);
  });

  router.get("/v1/turns/:id/events", async (req, res) => {
    const turn = await findTurn(ctx, req.params.id);
    const query = EventPageQuerySchema.safeParse(req.query);
    if (!query.success) throw validationError(fieldIssues(query.error, "query"));
    const cursor = startCursor(turn, req.get("Last-Event-ID"), query.data.after);
    if (query.data.format === "json") {
      res.type("application/json").send(await turnEventPage(ctx, turn, cursor, query.data.limit));
      return;
    }
    await TurnStream.serve(ctx, res, turn, cursor);
  });

  return router;
}

function wantsEventStream(req: Request): boolean {
  return (req.get("Accept") ?? "").includes("text/event-stream");
}

async function findTurn(ctx: ApiContext, id: string): Promise<TurnRecord> {
  const turn = id.length <= 64 ? await ctx.store.getTurn(id) : null;
  if (!turn) throw notFound("turn", id);
  return turn;
}

/** Last-Event-ID wins over `after`; with neither, the turn's first event. */
function startCursor(
  turn: TurnRecord,
  lastEventId: string | undefined,
  after: number | undefined,
): number {
  if (lastEventId !== undefined) {
    if (!/^\d{1,15}$/.test(lastEventId.trim())) {
      throw validationError([
        {
          field: "Last-Event-ID",
          code: "invalid_header",
          message: "must be an event seq (a non-negative integer)",
        },
      ]);
    }
    return Number(lastEventId.trim());
  }
  if (after !== undefined) return after;
  return turn.firstSeq !== null ? turn.firstSeq - 1 : 0;
}

/** A JSON page of the turn's events after `cursor`, as raw envelopes (byte-identical to SSE). */
async function turnEventPage(
  ctx: ApiContext,
  turn: TurnRecord,
  cursor: number,
  limit: number,
): Promise<string> {
  const picked: LogEvent[] = [];
  let scanned = cursor;
  let ended = false;
  while (picked.length < limit && !ended) {
    const batch = await ctx.eventLog.read(turn.sessionId, scanned, PAGE_SCAN_EVENTS);
    for (const event of batch) {
      scanned = event.seq;
      if (event.turnId !== turn.id) continue;
      picked.push(event);
      if (event.type === "turn_terminal") ended = true;
      if (ended || picked.length >= limit) break;
    }
    if (batch.length < PAGE_SCAN_EVENTS) break;
  }
  return `{"events":[${picked.map((e) => e.envelope).join(",")}],"next_after":${scanned},"has_more":${!ended}}`;
}
