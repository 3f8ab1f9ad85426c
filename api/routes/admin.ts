/**
 * /v1/admin: operator views. Guarded by `api.adminToken` (Bearer) when set; without a token
 * only clients on this host may call them.
 */
import { timingSafeEqual } from "node:crypto";
import { type Request, type RequestHandler, Router } from "express";
import { FarmError } from "../../src/contract/errors.js";
import { readTurnMonitor } from "../../src/obs/turn-monitor.js";
import { queueOverview } from "../../src/scheduler/queue-overview.js";
import type { ApiContext } from "../context.js";
import { registerBucketRoutes } from "./admin-buckets.js";
import { registerToolAdminRoutes } from "./tools.js";

const BUSIEST_USERS = 10;
const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

export function adminRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.use("/v1/admin", adminGuard(ctx.config.api.adminToken));

  router.get("/v1/admin/queues", async (_req, res) => {
    const { scheduler, budget } = ctx;
    res.json(
      await queueOverview(
        {
          redis: ctx.redis,
          keys: ctx.keys,
          queue: ctx.queue,
          gate: scheduler.gate,
          tiers: scheduler.tiers,
          budget,
        },
        BUSIEST_USERS,
      ),
    );
  });

  router.get("/v1/admin/monitor", async (_req, res) => {
    res.json(await readTurnMonitor(ctx.redis, ctx.keys));
  });

  registerBucketRoutes(router, ctx);
  registerToolAdminRoutes(router, ctx);
  return router;
}

/** The one admin guard, for `/v1/admin/*` and the Bull Board UI alike. */
export function adminGuard(token: string | undefined): RequestHandler {
  return (req, _res, next) => {
    authorize(req, token);
    next();
  };
}

function authorize(req: Request, token: string | undefined): void {
  if (token === undefined) {
    // Behind a proxy on this host every client looks local: forwarded requests need the token.
    const forwarded = req.get("X-Forwarded-For") ?? req.get("Forwarded");
    if (LOOPBACK.has(req.socket.remoteAddress ?? "") && forwarded === undefined) return;
    throw new FarmError(
      403,
      "forbidden",
      "admin routes answer only local, unproxied clients unless ADMIN_TOKEN is set",
    );
  }
  const given = /^Bearer (.+)$/.exec(req.get("Authorization") ?? "")?.[1] ?? "";
  const [a, b] = [Buffer.from(given), Buffer.from(token)];
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new FarmError(401, "unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>");
  }
}
