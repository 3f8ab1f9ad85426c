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
import { isCancelRequested } from "../../src/queue/cancel-signals.js";
import { isTerminal, type TurnRecord } from "../../src/store/port.js";
import { cancelTurn } from "../../src/turn/cancel.js";
import { submitTurn } from "../../src/turn/submit.js";
import { toTurnView, turnLastSeq } from "../../src/turn/view.js";
import type { ApiContext } from "../context.js";
import { turnEventPage } from "../event-page.js";
import { submitAndStream, TurnStream } from "../turn-stream.js";

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
      const { accepted, replayed } = await submitTurn(ctx, parsed.data, {
        idempotencyKey: key,
        traceId: res.locals.traceId,
        traceParent: res.locals.traceParent,
      });
      if (replayed) res.setHeader("Idempotent-Replayed", "true");
      res.setHeader("Location", accepted.links.self);
      res.status(202).json(accepted);
      return;
    }
    await submitAndStream(ctx, res, parsed.data, key);
  });

  router.get("/v1/turns/:id", async (req, res) => {
    const turn = await findTurn(ctx, req.params.id);
    const cancelRequested =
      !isTerminal(turn.status) && (await isCancelRequested(ctx.redis, ctx.keys, turn.id));
    const position =
      turn.status === "queued" ? ((await ctx.scheduler.positions.of(turn.id)) ?? 0) : null;
    res.json(
      toTurnView(turn, await turnLastSeq(ctx.redis, ctx.keys, turn), cancelRequested, position),
    );
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
