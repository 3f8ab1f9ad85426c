/**
 * Turns anything a handler throws into the shared error envelope with the right status.
 *
 * Invariants: bad input never yields a 500; an unavailable dependency yields 503 with
 * Retry-After; a real bug yields 500 with a generic message (details only in the log).
 */
import type { ErrorRequestHandler, RequestHandler } from "express";
import { FarmError } from "../src/contract/errors.js";
import type { Logger } from "../src/obs/logger.js";
import { EventsArchivedError, StoreUnavailableError } from "../src/store/errors.js";

/** Retry-After for a store outage: long enough for a failover, short enough to notice its end. */
const STORE_RETRY_AFTER_S = 5;

const BODY_PARSER_ERRORS: Record<string, [number, string, string]> = {
  "entity.parse.failed": [400, "invalid_json", "request body is not valid JSON"],
  "entity.too.large": [413, "payload_too_large", "request body is too large"],
  "entity.verify.failed": [400, "invalid_request", "request body was rejected"],
  "encoding.unsupported": [415, "unsupported_media_type", "unsupported content encoding"],
  "charset.unsupported": [415, "unsupported_media_type", "unsupported charset"],
  "request.aborted": [400, "request_aborted", "the request was aborted by the client"],
  "request.size.invalid": [400, "invalid_request", "request size did not match Content-Length"],
  "stream.encoding.set": [500, "internal_error", "internal error"],
};

const DEPENDENCY_DOWN =
  /ECONNREFUSED|ECONNRESET|Connection is closed|MaxRetriesPerRequest|Stream isn't writeable|SQLITE_BUSY|database is locked/i;

export function toFarmError(err: unknown): FarmError | null {
  if (err instanceof FarmError) return err;
  if (err instanceof EventsArchivedError) {
    return new FarmError(410, err.code, err.message, {
      details: {
        session_id: err.sessionId,
        ranges: err.ranges.map((r) => ({
          bucket: r.bucket,
          first_seq: r.firstSeq,
          last_seq: r.lastSeq,
        })),
        resume_after: err.resumeAfter,
      },
    });
  }
  if (err instanceof StoreUnavailableError) {
    // The detail (hosts, driver text) is for the log, not for clients.
    return new FarmError(
      503,
      err.code,
      "the store is unavailable; retry after the Retry-After delay",
      {
        retryable: true,
        retryAfterS: STORE_RETRY_AFTER_S,
      },
    );
  }
  const e = err as { type?: string; status?: number; message?: string; name?: string };
  const known = e?.type ? BODY_PARSER_ERRORS[e.type] : undefined;
  if (known) {
    const [status, code, message] = known;
    return new FarmError(
      status,
      code,
      e.type === "entity.parse.failed" ? `${message}: ${e.message}` : message,
    );
  }
  if (typeof e?.message === "string" && DEPENDENCY_DOWN.test(e.message)) {
    return new FarmError(
      503,
      "dependency_unavailable",
      "a backing service (Redis or the store) is unavailable",
      {
        retryable: true,
        retryAfterS: 1,
      },
    );
  }
  if (typeof e?.status === "number" && e.status >= 400 && e.status < 500) {
    return new FarmError(e.status, "invalid_request", e.message ?? "invalid request");
  }
  return null;
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const farmError = toFarmError(err);
    const traceId = res.locals.traceId as string | undefined;
    if (!farmError) {
      logger.error("unhandled error in request", {
        trace_id: traceId,
        method: req.method,
        path: req.path,
        error: (err as Error)?.message,
        stack: (err as Error)?.stack,
      });
    } else if (farmError.status >= 500) {
      logger.warn("request failed", {
        trace_id: traceId,
        path: req.path,
        code: farmError.code,
        error: (err as Error)?.message,
      });
    }
    const out =
      farmError ?? new FarmError(500, "internal_error", "internal error; the incident was logged");
    if (res.headersSent) {
      res.end();
      return;
    }
    if (out.options.retryAfterS !== undefined)
      res.setHeader("Retry-After", String(out.options.retryAfterS));
    res.status(out.status).json(out.toEnvelope(traceId));
  };
}

export const routeNotFound: RequestHandler = (req, res) => {
  res
    .status(404)
    .json(
      new FarmError(404, "route_not_found", `no route ${req.method} ${req.path}`).toEnvelope(
        res.locals.traceId as string | undefined,
      ),
    );
};
