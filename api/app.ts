/**
 * The Express application: body parsing, routes, request metrics, the error envelope.
 */
import express, { type Express } from "express";
import { httpRequestDuration } from "../src/obs/metrics.js";
import { newTraceId, parseTraceparent } from "../src/obs/trace-context.js";
import type { ApiContext } from "./context.js";
import { errorHandler, routeNotFound } from "./errors.js";
import { adminRoutes } from "./routes/admin.js";
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
    const traceId = parseTraceparent(req.get("traceparent"))?.traceId ?? newTraceId();
    res.locals.traceId = traceId;
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
  app.use(routeNotFound);
  app.use(errorHandler(ctx.logger));
  return app;
}
