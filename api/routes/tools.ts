/**
 * /v1/tools: the tool catalogue — every tool a turn can ask for, with its schema and whether it
 * can be called now (a source failing its health checks is reported unavailable).
 */
import { Router } from "express";
import type { ToolList } from "../../src/contract/tools.js";
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
