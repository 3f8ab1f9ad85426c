/**
 * Serving one turn's events as SSE: from a cursor (resume) or from the submit request itself
 * (where the first event is written the moment it exists), until `turn_terminal`.
 */
import type { Response } from "express";
import type { SubmitTurnRequest } from "../src/contract/turns.js";
import type { LogEvent } from "../src/events/event-log.js";
import { followTurn } from "../src/events/follow.js";
import { sseResumes } from "../src/obs/metrics.js";
import { EventsArchivedError } from "../src/store/errors.js";
import type { TurnRecord } from "../src/store/port.js";
import { type SubmitResult, submitTurn } from "../src/turn/submit.js";
import { turnEndedBy, turnLinks } from "../src/turn/view.js";
import type { ApiContext } from "./context.js";
import { SseWriter } from "./sse.js";

/** A caught-up stream re-checks the log this often, in case a live message was missed. */
const IDLE_POLL_MS = 1_000;

export class TurnStream {
  private readonly closed = new AbortController();
  private readonly sse: SseWriter;

  private constructor(
    private readonly ctx: ApiContext,
    res: Response,
  ) {
    res.on("close", () => this.closed.abort());
    this.sse = new SseWriter(res, ctx.config.api.sseHeartbeatMs);
  }

  /** Starts the SSE response (headers set on `res` before this are sent with it). */
  static open(ctx: ApiContext, res: Response): TurnStream {
    return new TurnStream(ctx, res);
  }

  /**
   * Streams the turn after `cursor` to its end; or answers 204 when it ended at or before the
   * cursor (EventSource clients then stop reconnecting).
   */
  static async serve(ctx: ApiContext, res: Response, turn: TurnRecord, cursor: number) {
    const resumed = cursor > 0;
    if (await turnEndedBy(ctx.redis, ctx.keys, turn, cursor)) {
      if (resumed) sseResumes.inc({ outcome: "ended" });
      res.status(204).end();
      return;
    }
    if (resumed) sseResumes.inc({ outcome: "streamed" });
    // Read the first event before the stream opens, so an archived range answers 410 instead
    // of a stream that ends at once and reconnects forever. Any other failure (a store outage)
    // opens the stream anyway: EventSource gives up on a non-200 answer, but reconnects after
    // a stream that ended.
    await ctx.eventLog.read(turn.sessionId, cursor, 1).catch((err: unknown) => {
      if (err instanceof EventsArchivedError) throw err;
    });
    await TurnStream.open(ctx, res).follow(turn, cursor);
  }

  async write(events: LogEvent[]): Promise<void> {
    await this.sse.events(events);
  }

  /** Writes the turn's events after `cursor` until its `turn_terminal`, then ends the response. */
  async follow(turn: TurnRecord, cursor: number): Promise<void> {
    const { ctx } = this;
    try {
      const events = followTurn(ctx.eventLog, ctx.liveHub, {
        sessionId: turn.sessionId,
        turnId: turn.id,
        after: cursor,
        signal: this.closed.signal,
        idlePollMs: IDLE_POLL_MS,
        endedBy: async (at) => {
          const latest = await ctx.store.getTurn(turn.id);
          return !!latest && (await turnEndedBy(ctx.redis, ctx.keys, latest, at));
        },
      });
      for await (const batch of events) await this.sse.events(batch);
    } catch (err) {
      ctx.logger.warn("event stream ended by an error", {
        turn_id: turn.id,
        error: (err as Error).message,
      });
    } finally {
      this.sse.end();
    }
  }

  /** Ends the response now (the turn could not be admitted; the client resumes with GET). */
  end(): void {
    this.sse.end();
  }
}

/**
 * Submit and stream in one request (as wunder's `stream: true`). The stream opens with the
 * `queued` event as soon as it exists, while the turn is still being admitted.
 */
export async function submitAndStream(
  ctx: ApiContext,
  res: Response,
  request: SubmitTurnRequest,
  idempotencyKey: string | undefined,
): Promise<void> {
  let stream: TurnStream | null = null;
  let cursor: number | null = null;
  const open = (turn: TurnRecord, replayed: boolean): TurnStream => {
    res.setHeader("Location", turnLinks(turn.id).self);
    res.setHeader("X-Turn-Id", turn.id);
    res.setHeader("X-Session-Id", turn.sessionId);
    if (replayed) res.setHeader("Idempotent-Replayed", "true");
    stream = TurnStream.open(ctx, res);
    return stream;
  };
  let submitted: SubmitResult;
  try {
    submitted = await submitTurn(ctx, request, {
      idempotencyKey,
      traceId: res.locals.traceId,
      traceParent: res.locals.traceParent,
      hooks: {
        onQueued: (turn, event, replayed) => {
          void open(turn, replayed).write([event]);
          cursor = event.seq;
        },
      },
    });
  } catch (err) {
    if (!stream) throw err;
    // The turn exists and is queued; the reconciler admits it. The client resumes with GET.
    ctx.logger.warn("turn accepted but not yet admitted", { error: (err as Error).message });
    (stream as TurnStream).end();
    return;
  }
  const { turn, replayed } = submitted;
  const opened = stream ?? open(turn, replayed);
  await opened.follow(turn, cursor ?? (turn.firstSeq ?? 1) - 1);
}
