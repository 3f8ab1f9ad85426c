/**
 * /v1/sessions: a session's record, its recent turns, and a page of its whole event log.
 */
import { Router } from "express";
import { fieldIssues, notFound, validationError } from "../../src/contract/errors.js";
import { EventPageQuerySchema, type SessionView } from "../../src/contract/turns.js";
import type { SessionRecord } from "../../src/store/port.js";
import { toTurnView, turnLastSeq } from "../../src/turn/view.js";
import type { ApiContext } from "../context.js";
import { eventPageJson } from "../event-page.js";

const RECENT_TURNS = 20;

export function sessionRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get("/v1/sessions/:id", async (req, res) => {
    const session = await findSession(ctx, req.params.id);
    const turns = await ctx.store.listSessionTurns(session.id, RECENT_TURNS);
    const view: SessionView = {
      session_id: session.id,
      user_id: session.userId,
      created_at: new Date(session.createdAt).toISOString(),
      updated_at: new Date(session.updatedAt).toISOString(),
      last_seq: await ctx.eventLog.headSeq(session.id),
      turns: await Promise.all(
        turns.map(async (t) => toTurnView(t, await turnLastSeq(ctx.redis, ctx.keys, t))),
      ),
    };
    res.json(view);
  });

  router.get("/v1/sessions/:id/events", async (req, res) => {
    const session = await findSession(ctx, req.params.id);
    const query = EventPageQuerySchema.safeParse(req.query);
    if (!query.success) throw validationError(fieldIssues(query.error, "query"));
    const after = query.data.after ?? 0;
    const events = await ctx.eventLog.read(session.id, after, query.data.limit);
    const next = events[events.length - 1]?.seq ?? after;
    const head = await ctx.eventLog.headSeq(session.id);
    res.type("application/json").send(eventPageJson(events, next, next < head));
  });

  return router;
}

async function findSession(ctx: ApiContext, id: string): Promise<SessionRecord> {
  const session = id.length <= 128 ? await ctx.store.getSession(id) : null;
  if (!session) throw notFound("session", id);
  return session;
}
