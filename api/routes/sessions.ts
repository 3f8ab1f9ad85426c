/**
 * /v1/sessions: a session's record, its recent turns, and a page of its whole event log.
 */
import { Router } from "express";
import { FarmError, fieldIssues, notFound, validationError } from "../../src/contract/errors.js";
import { SessionIdSchema } from "../../src/contract/ids.js";
import {
  CompactSessionRequestSchema,
  EventPageQuerySchema,
  type SessionView,
} from "../../src/contract/turns.js";
import type { SessionRecord } from "../../src/store/port.js";
import { submitTurn } from "../../src/turn/submit.js";
import { toTurnView, turnLastSeq } from "../../src/turn/view.js";
import type { ApiContext } from "../context.js";
import { eventPageJson } from "../event-page.js";

const RECENT_TURNS = 20;

export function sessionRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get("/v1/sessions/:id", async (req, res) => {
    const session = await findSession(ctx, req.params.id);
    const [turns, consumed] = await Promise.all([
      ctx.store.listSessionTurns(session.id, RECENT_TURNS),
      ctx.store.sessionUsage(session.id),
    ]);
    const view: SessionView = {
      session_id: session.id,
      user_id: session.userId,
      created_at: new Date(session.createdAt).toISOString(),
      updated_at: new Date(session.updatedAt).toISOString(),
      last_seq: await ctx.eventLog.headSeq(session.id),
      usage: {
        ...consumed,
        context_tokens: turns.find((t) => t.usage)?.usage?.context_tokens ?? 0,
      },
      turns: await Promise.all(
        turns.map(async (t) => toTurnView(t, await turnLastSeq(ctx.redis, ctx.keys, t))),
      ),
    };
    res.json(view);
  });

  // Compaction on demand: a turn of kind "compaction", queued behind the session's running turn.
  router.post("/v1/sessions/:id/compaction", async (req, res) => {
    const hasBody = Number(req.get("Content-Length") ?? 0) > 0 || req.get("Transfer-Encoding");
    if (hasBody && !req.is("application/json")) {
      throw new FarmError(415, "unsupported_media_type", "send the body as application/json");
    }
    const parsed = CompactSessionRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) throw validationError(fieldIssues(parsed.error));
    const id = req.params.id;
    if (!isSessionId(id)) throw notFound("session", id);
    const { accepted, replayed } = await submitTurn(
      ctx,
      { ...parsed.data, input: "", session_id: id, tools: [], kind: "compaction" },
      {
        idempotencyKey: req.get("Idempotency-Key"),
        traceId: res.locals.traceId,
        traceParent: res.locals.traceParent,
      },
    );
    if (replayed) res.setHeader("Idempotent-Replayed", "true");
    res.setHeader("Location", accepted.links.self);
    res.status(202).json(accepted);
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

/** An id no session can have is not looked up. */
function isSessionId(id: string): boolean {
  return SessionIdSchema.safeParse(id).success;
}

async function findSession(ctx: ApiContext, id: string): Promise<SessionRecord> {
  const session = isSessionId(id) ? await ctx.store.getSession(id) : null;
  if (!session) throw notFound("session", id);
  return session;
}
