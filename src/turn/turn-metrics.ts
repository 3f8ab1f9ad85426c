/**
 * Turn metrics: how long turns wait for a worker, how long they run, how they end, and what
 * their compactions do. Recorded by the process that does the step (a worker), so they add up
 * across workers.
 *
 * Labels are bounded: kind, status, stop reason, compaction reason, strategy and status come
 * from fixed vocabularies (api.md, context.md); never a user, session or turn id.
 */
import { Counter, Histogram } from "prom-client";
import { metricsRegistry } from "../obs/metrics.js";
import type { TurnKind } from "../store/port.js";

const queueWait = new Histogram({
  name: "farm_turn_queue_wait_seconds",
  help: "Time from a turn's submit to its first start on a worker, by kind",
  labelNames: ["kind"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  registers: [metricsRegistry],
});

const duration = new Histogram({
  name: "farm_turn_duration_seconds",
  help: "Time from a turn's first start to its end, by kind and status",
  labelNames: ["kind", "status"] as const,
  buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
  registers: [metricsRegistry],
});

const finished = new Counter({
  name: "farm_turns_finished_total",
  help: "Turns ended by a worker, by kind, status and stop reason",
  labelNames: ["kind", "status", "stop_reason"] as const,
  registers: [metricsRegistry],
});

const compactions = new Counter({
  name: "farm_compactions_total",
  help: "Context compactions by reason (history, overflow, oversized_input, manual), strategy and status",
  labelNames: ["reason", "strategy", "status"] as const,
  registers: [metricsRegistry],
});

const savedTokens = new Counter({
  name: "farm_compaction_saved_tokens_total",
  help: "Prompt tokens compactions removed from requests (estimate before − after), by reason",
  labelNames: ["reason"] as const,
  registers: [metricsRegistry],
});

export const turnMetrics = {
  started(kind: TurnKind, waitedS: number): void {
    queueWait.observe({ kind }, Math.max(0, waitedS));
  },
  ended(kind: TurnKind, status: string, stopReason: string | null, ranS: number): void {
    duration.observe({ kind, status }, Math.max(0, ranS));
    finished.inc({ kind, status, stop_reason: stopReason ?? "none" });
  },
  compacted(reason: string, strategy: string, status: string, saved: number): void {
    compactions.inc({ reason, strategy, status });
    if (saved > 0) savedTokens.inc({ reason }, saved);
  },
};
