/**
 * /v1/tools: the tool catalogue — every tool a turn can ask for, with its schema and whether it
 * can be called now (a source failing its health checks is reported unavailable) — and the
 * operators' explicit refresh (every worker lists its MCP servers' tools again).
 */
import { Router } from "express";
import type { ToolList, ToolRefreshAccepted } from "../../src/contract/tools.js";
import type { ApiContext } from "../context.js";

export function toolRoutes(ctx: ApiContext): Router {
  const router = Router();
  router.get("/v1/tools", async (_req, res) => {
    const view = await ctx.tools.view();
    const body: ToolList = {
      tools: view.tools,
      sources: view.sources.map((s) => ({
        id: s.id,
        tools: s.tools,
        available: s.available,
        ...(s.error !== undefined ? { error: s.error } : {}),
        checked_at: new Date(s.checkedAt).toISOString(),
      })),
      workers: view.workers,
    };
    res.json(body);
  });
  return router;
}

/** Registered inside the admin router, behind its guard. */
export function registerToolAdminRoutes(router: Router, ctx: ApiContext): void {
  router.post("/v1/admin/tools/refresh", async (_req, res) => {
    const workers = await ctx.redis.publish(ctx.keys.toolRefreshChannel, "refresh");
    const body: ToolRefreshAccepted = { workers_notified: workers };
    res.status(202).json(body);
  });
}
