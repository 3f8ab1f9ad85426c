/**
 * What went wrong with a model call, in the terms the turn loop decides on: retry or not, after
 * how long, and which code the turn fails with if it gives up.
 */
import OpenAI from "openai";
import { redactSecrets } from "../obs/redact.js";

export type LlmErrorKind =
  | "rate_limited"
  | "provider_error"
  | "network"
  | "timeout"
  | "context_window_exceeded"
  | "auth_failed"
  | "bad_request"
  | "empty_response"
  /** The model's endpoint keeps failing and its circuit breaker is open (endpoint-breaker.ts). */
  | "circuit_open"
  | "aborted";

const RETRYABLE: ReadonlySet<LlmErrorKind> = new Set([
  "rate_limited",
  "provider_error",
  "network",
  "timeout",
  "empty_response",
  "circuit_open",
]);

export class LlmError extends Error {
  readonly retryable: boolean;

  constructor(
    readonly kind: LlmErrorKind,
    message: string,
    readonly status: number | null = null,
    /** The provider's Retry-After, when it sent one. */
    readonly retryAfterMs: number | null = null,
  ) {
    // Provider error text can echo request details; it goes into events and stored turns.
    super(redactSecrets(message));
    this.name = "LlmError";
    this.retryable = RETRYABLE.has(kind);
  }
}

/** Maps anything the OpenAI client throws to an LlmError. */
export function classifyLlmError(err: unknown): LlmError {
  if (err instanceof LlmError) return err;
  if (err instanceof OpenAI.APIUserAbortError) return new LlmError("aborted", "request aborted");
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return new LlmError("timeout", "model request timed out");
  }
  if (err instanceof OpenAI.APIConnectionError) {
    return new LlmError("network", `cannot reach the model: ${err.message}`);
  }
  if (err instanceof OpenAI.APIError) return fromStatus(err);
  const message = err instanceof Error ? err.message : String(err);
  return new LlmError("network", `model stream failed: ${message}`);
}

function fromStatus(err: InstanceType<typeof OpenAI.APIError>): LlmError {
  const status = err.status ?? 0;
  const message = `model answered ${status}: ${err.message}`;
  if (status === 429)
    return new LlmError("rate_limited", message, status, retryAfterMs(err.headers));
  if (status >= 500 || status === 408 || status === 409) {
    return new LlmError("provider_error", message, status, retryAfterMs(err.headers));
  }
  if (status === 401 || status === 403) return new LlmError("auth_failed", message, status);
  if (isContextOverflow(err)) return new LlmError("context_window_exceeded", message, status);
  return new LlmError("bad_request", message, status);
}

function isContextOverflow(err: InstanceType<typeof OpenAI.APIError>): boolean {
  return (
    err.code === "context_length_exceeded" ||
    /maximum context length|context length|context window/i.test(err.message)
  );
}

/** Retry-After in seconds or as an HTTP date; `retry-after-ms` when a provider sends it. */
function retryAfterMs(headers: Headers | undefined): number | null {
  const ms = headers?.get("retry-after-ms");
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers?.get("retry-after");
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, date - Date.now());
}
