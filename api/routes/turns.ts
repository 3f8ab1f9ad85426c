/**
 * /v1/turns: submit, read, stream or page events, cancel.
 * Handlers validate and translate; the turn services in src/turn do the work.
 */
import { type Request, type Response, Router } from "express";
import { FarmError, fieldIssues, notFound, validationError } from "../../src/contract/errors.js";
import {
  EventPageQuerySchema,
  MAX_INPUT_CHARS,
  SubmitTurnRequestSchema,
} from "../../src/contract/turns.js";
import type { LogEvent } from "../../src/events/event-log.js";
import { followTurn } from "../../src/events/follow.js";
import { isTerminal, type TurnRecord } from "../../src/store/port.js";
import { cancelTurn } from "../../src/turn/cancel.js";
import { submitTurn } from "../../src/turn/submit.js";
import { knownLastSeq, toTurnView, turnLastSeq } from "../../src/turn/view.js";
import type { ApiContext } from "../context.js";
import { SseWriter } from "../sse.js";

/** A caught-up stream re-checks the log this often, in case a live message was missed. */
const IDLE_POLL_MS = 1_000;
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
    const { accepted, replayed, turn } = await submitTurn(ctx, parsed.data, key);
    if (replayed) res.setHeader("Idempotent-Replayed", "true");
    res.setHeader("Location", accepted.links.self);
    if (wantsEventStream(req)) {
      // Submit and stream in one request (as wunder's `stream: true`): the turn's events follow.
      res.setHeader("X-Turn-Id", turn.id);
      res.setHeader("X-Session-Id", turn.sessionId);
      await streamTurn(ctx, turn, startCursor(turn, undefined, undefined), res);
      return;
    }
    res.status(202).json(accepted);
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
    await streamTurn(ctx, turn, cursor, res);
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

async function streamTurn(
  ctx: ApiContext,
  turn: TurnRecord,
  cursor: number,
  res: Response,
): Promise<void> {
  if (await endedBy(ctx, turn, cursor)) {
    // Nothing more will come; 204 tells EventSource clients to stop reconnecting.
    res.status(204).end();
    return;
  }
  const closed = new AbortController();
  res.on("close", () => closed.abort());
  const sse = new SseWriter(res, ctx.config.api.sseHeartbeatMs);
  try {
    const events = followTurn(ctx.eventLog, ctx.liveHub, {
      sessionId: turn.sessionId,
      turnId: turn.id,
      after: cursor,
      signal: closed.signal,
      idlePollMs: IDLE_POLL_MS,
      endedBy: async (at) => {
        const latest = await ctx.store.getTurn(turn.id);
        return !!latest && (await endedBy(ctx, latest, at));
      },
    });
    for await (const batch of events) await sse.events(batch);
  } catch (err) {
    ctx.logger.warn("event stream ended by an error", {
      turn_id: turn.id,
      error: (err as Error).message,
    });
  } finally {
    sse.end();
  }
}

/** True when the turn has ended and its last event is known to be at or before `cursor`. */
async function endedBy(ctx: ApiContext, turn: TurnRecord, cursor: number): Promise<boolean> {
  if (!isTerminal(turn.status)) return false;
  const last = await knownLastSeq(ctx.redis, ctx.keys, turn);
  return last !== null && cursor >= last;
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
