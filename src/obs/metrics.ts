/**
 * The process's Prometheus registry: Node's default metrics plus the farm's own.
 * Labels are bounded: route templates and status codes, never ids.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry });

/**
 * prom-client exports three gauges of its default set twice: by type (`nodejs_active_handles`,
 * `…_requests`, `…_resources`) and as a total with a `_total` suffix, which Prometheus reserves
 * for counters (`promtool check metrics` refuses it). The totals go: sum the by-type gauges.
 */
for (const what of ["handles", "requests", "resources"]) {
  metricsRegistry.removeSingleMetric(`nodejs_active_${what}_total`);
}

export const httpRequestDuration = new Histogram({
  name: "http_server_request_duration_seconds",
  help: "HTTP request duration by route template and status code",
  labelNames: ["method", "route", "status_code"] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  registers: [metricsRegistry],
});

export const admissionRejections = new Counter({
  name: "farm_admission_rejections_total",
  help: "Submits refused before anything was stored, by reason (user_queue_full, session_busy, overloaded_*)",
  labelNames: ["reason"] as const,
  registers: [metricsRegistry],
});

export const sseConnections = new Gauge({
  name: "farm_sse_connections",
  help: "Event streams (SSE) open now",
  registers: [metricsRegistry],
});

export const sseResumes = new Counter({
  name: "farm_sse_resumes_total",
  help: "Streams opened after a cursor (Last-Event-ID or ?after=), by outcome: streamed, or ended (204, the turn had ended by then)",
  labelNames: ["outcome"] as const,
  registers: [metricsRegistry],
});

export const sseEventsSent = new Counter({
  name: "farm_sse_events_sent_total",
  help: "Events written to event streams",
  registers: [metricsRegistry],
});
