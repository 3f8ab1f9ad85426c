/**
 * Model call metrics, OpenTelemetry GenAI client names mapped to Prometheus. Every model call
 * of every worker goes through ModelClients.stream, which records them.
 *
 * Labels are bounded: `gen_ai_request_model` is a configured model name, `error_type` an
 * LlmError kind, `reason` a retry reason; never a user, session or turn id.
 */
import { Counter, Histogram } from "prom-client";
import { metricsRegistry } from "../obs/metrics.js";

/** The GenAI advised buckets for client durations: 0.01 s doubling to 81.92 s. */
const DURATION_BUCKETS_S = Array.from({ length: 14 }, (_, i) => 0.01 * 2 ** i);
/** The GenAI advised buckets for token counts: 1, 4, 16 … 4^12. */
const TOKEN_BUCKETS = Array.from({ length: 13 }, (_, i) => 4 ** i);

const operationDuration = new Histogram({
  name: "gen_ai_client_operation_duration_seconds",
  help: "Model call duration (one try, request to last chunk) by model and error type",
  labelNames: ["gen_ai_operation_name", "gen_ai_request_model", "error_type"] as const,
  buckets: DURATION_BUCKETS_S,
  registers: [metricsRegistry],
});

const timeToFirstChunk = new Histogram({
  name: "gen_ai_client_operation_time_to_first_chunk_seconds",
  help: "Time from sending a streamed model call to its first chunk, by model",
  labelNames: ["gen_ai_operation_name", "gen_ai_request_model"] as const,
  buckets: DURATION_BUCKETS_S,
  registers: [metricsRegistry],
});

const tokenUsage = new Histogram({
  name: "gen_ai_client_token_usage",
  help: "Tokens per model call as the provider reported them, by model and type (input/output)",
  labelNames: ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"] as const,
  buckets: TOKEN_BUCKETS,
  registers: [metricsRegistry],
});

const retries = new Counter({
  name: "farm_llm_retries_total",
  help: "Model call retries of turn rounds, by model and reason (rate_limited, timeout, …)",
  labelNames: ["gen_ai_request_model", "reason"] as const,
  registers: [metricsRegistry],
});

const OPERATION = "chat";

export const llmMetrics = {
  /** One try ended: `errorType` is the LlmError kind, or "" for success. */
  call(model: string, seconds: number, errorType: string): void {
    operationDuration.observe(
      { gen_ai_operation_name: OPERATION, gen_ai_request_model: model, error_type: errorType },
      seconds,
    );
  },
  firstChunk(model: string, seconds: number): void {
    timeToFirstChunk.observe(
      { gen_ai_operation_name: OPERATION, gen_ai_request_model: model },
      seconds,
    );
  },
  tokens(model: string, usage: { input_tokens: number; output_tokens: number }): void {
    const labels = { gen_ai_operation_name: OPERATION, gen_ai_request_model: model };
    tokenUsage.observe({ ...labels, gen_ai_token_type: "input" }, usage.input_tokens);
    tokenUsage.observe({ ...labels, gen_ai_token_type: "output" }, usage.output_tokens);
  },
  retry(model: string, reason: string): void {
    retries.inc({ gen_ai_request_model: model, reason });
  },
};
