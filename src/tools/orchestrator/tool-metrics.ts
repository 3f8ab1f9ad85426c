/**
 * Tool call metrics, OpenTelemetry GenAI names mapped to Prometheus. Labels are bounded: tool
 * names come from the registry (configured sources), never from the model's free text.
 */
import { Counter, Gauge, Histogram } from "prom-client";
import { BREAKER_STATE_VALUE, type BreakerState } from "../../llm/endpoint-breaker.js";
import { metricsRegistry } from "../../obs/metrics.js";
import type { ToolEntry } from "../source.js";
import type { GuardedOutcome } from "./call-policy.js";

const duration = new Histogram({
  name: "gen_ai_execute_tool_duration_seconds",
  help: "Tool call duration (all tries, lock wait excluded) by tool, source and outcome",
  labelNames: ["gen_ai_tool_name", "source", "outcome"] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [metricsRegistry],
});

const retries = new Counter({
  name: "farm_tool_retries_total",
  help: "Tool call retries after a transient failure, by breaker key (tool source)",
  labelNames: ["breaker"] as const,
  registers: [metricsRegistry],
});

const breakerState = new Gauge({
  name: "farm_tool_breaker_state",
  help: "Circuit breaker state per tool source: 0 closed, 1 half-open, 2 open",
  labelNames: ["breaker"] as const,
  registers: [metricsRegistry],
});

export type ToolCallOutcome = "ok" | "error" | "timeout" | "aborted";

function outcomeOf(outcome: GuardedOutcome): ToolCallOutcome {
  if (outcome.aborted) return "aborted";
  if (outcome.timedOut) return "timeout";
  return outcome.output.ok ? "ok" : "error";
}

export const toolMetrics = {
  observe(entry: ToolEntry, outcome: GuardedOutcome, seconds: number): void {
    duration.observe(
      { gen_ai_tool_name: entry.name, source: entry.source, outcome: outcomeOf(outcome) },
      seconds,
    );
  },
  retry(breakerKey: string): void {
    retries.inc({ breaker: breakerKey });
  },
  breaker(breakerKey: string, state: BreakerState): void {
    breakerState.set({ breaker: breakerKey }, BREAKER_STATE_VALUE[state]);
  },
};
