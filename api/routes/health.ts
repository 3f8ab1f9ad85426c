/**
 * Liveness, readiness, metrics and the OpenAPI document.
 * `/readyz` is what load balancers should gate traffic on: it fails while Redis or the store is down.
 */
import { Router } from "express";
import { openApiDocument } from "../../src/contract/openapi.js";
import { metricsRegistry } from "../../src/obs/metrics.js";
import type { ApiContext } from "../context.js";

const CHECK_TIMEOUT_MS = 1_000;

export function healthRoutes(ctx: ApiContext): Router {
  const router = Router();

  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  router.get("/readyz", async (_req, res) => {
    const [redis, store] = await Promise.all([
      check(() => ctx.redis.ping()),
      check(() => ctx.store.ping()),
    ]);
    const ready = redis === "ok" && store === "ok";
    if (!ready) res.setHeader("Retry-After", "1");
    res
      .status(ready ? 200 : 503)
      .json({ status: ready ? "ready" : "not_ready", checks: { redis, store } });
  });

  router.get("/metrics", async (_req, res) => {
    res.type(metricsRegistry.contentType).send(await metricsRegistry.metrics());
  });

  router.get("/v1/openapi.json", (_req, res) => {
    res.json(openApiDocument());
  });

  return router;
}

async function check(probe: () => Promise<unknown>): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      probe(),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      }),
    ]);
    return "ok";
  } catch (err) {
    return `error: ${(err as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}
