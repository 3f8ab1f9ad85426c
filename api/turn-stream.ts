/**
 * Serving one turn's events as SSE: from a cursor (resume) or from the submit request itself
 * (where the first event is written the moment it exists), until `turn_terminal`.
 */
import type { Response } from "express";
import type { LogEvent } from "../src/events/event-log.js";
import { followTurn } from "../src/events/follow.js";
import { isTerminal, type TurnRecord } from "../src/store/port.js";
import { knownLastSeq } from "../src/turn/view.js";
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
    if (await endedBy(ctx, turn, cursor)) {
      res.status(204).end();
      return;
    }
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
          return !!latest && (await endedBy(ctx, latest, at));
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

/** True when the turn has ended and its last event is known to be at or before `cursor`. */
async function endedBy(ctx: ApiContext, turn: TurnRecord, cursor: number): Promise<boolean> {
  if (!isTerminal(turn.status)) return false;
  const last = await knownLastSeq(ctx.redis, ctx.keys, turn);
  return last !== null && cursor >= last;
}
