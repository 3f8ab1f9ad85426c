/**
 * The Express application: body parsing, routes, request metrics, the error envelope.
 */
import express, { type Express } from "express";
import { moduleLogger } from "../src/obs/logger.js";
import { httpRequestDuration } from "../src/obs/metrics.js";
import { formatTraceparent, newTraceId, parseTraceparent } from "../src/obs/trace-context.js";
import type { ApiContext } from "./context.js";
import { errorHandler, routeNotFound } from "./errors.js";
import { adminGuard, adminRoutes } from "./routes/admin.js";
import { BULL_BOARD_PATH, bullBoard } from "./routes/bull-board.js";
import { healthRoutes } from "./routes/health.js";
import { sessionRoutes } from "./routes/sessions.js";
import { toolRoutes } from "./routes/tools.js";
import { turnRoutes } from "./routes/turns.js";

export function createApp(ctx: ApiContext): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("query parser", "simple");

  // Every request belongs to a trace: the caller's (`traceparent`) or a new one.
  app.use((req, res, next) => {
    const caller = parseTraceparent(req.get("traceparent"));
    const traceId = caller?.traceId ?? newTraceId();
    res.locals.traceId = traceId;
    // The caller's span: a submitted turn's worker spans become its children.
    if (caller) res.locals.traceParent = formatTraceparent(caller);
    res.setHeader("X-Trace-Id", traceId);
    next();
  });
  app.use((req, res, next) => {
    const stop = httpRequestDuration.startTimer({ method: req.method });
    res.on("finish", () => {
      // The route template, never the raw path: ids must not become label values.
      const route = req.route?.path ? `${req.baseUrl}${req.route.path}` : "unmatched";
      stop({ route, status_code: String(res.statusCode) });
    });
    next();
  });
  app.use(express.json({ limit: ctx.config.api.maxBodyBytes, strict: true }));

  app.use(healthRoutes(ctx));
  app.use(turnRoutes(ctx));
  app.use(sessionRoutes(ctx));
  app.use(toolRoutes(ctx));
  app.use(adminRoutes(ctx));
  // Bull Board answers only what it knows; anything else falls through to the JSON 404 below.
  app.use(BULL_BOARD_PATH, adminGuard(ctx.config.api.adminToken), bullBoard(ctx.queue));
  app.use(routeNotFound);
  app.use(errorHandler(moduleLogger(ctx.logger, "api")));
  return app;
}
