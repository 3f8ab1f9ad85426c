/**
 * What a turn loop that stopped early means for the turn, decided from the error and from why
 * the turn was aborted (if it was):
 * - the lease was lost → abandon (another worker owns the turn now);
 * - the worker is shutting down → hand the turn back to the queue;
 * - the user cancelled → the turn ends `cancelled`;
 * - the model's budget is not back soon → park the turn until it is (it keeps its place);
 * - the model failed for good → the turn ends `failed` with a code;
 * - anything else is a bug: null, and the caller rethrows.
 */
import { LeaseLostError } from "../events/appender.js";
import { LlmError } from "../llm/llm-error.js";
import type { TurnError } from "../store/port.js";
import { ModelDeferral } from "./model-gate.js";
import { TurnAborted } from "./turn-loop.js";

export type AbortReason = "cancel" | "shutdown" | "lease_lost";

/** A turn's abort switch, remembering the first reason it was pulled for. */
export class TurnAbort {
  private readonly controller = new AbortController();
  reason: AbortReason | null = null;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  fire(reason: AbortReason): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller.abort();
  }
}

export type EarlyStop =
  | { kind: "abandon" }
  | { kind: "hand_back" }
  | { kind: "defer"; deferral: ModelDeferral }
  | { kind: "cancelled"; error: TurnError }
  | { kind: "failed"; error: TurnError };

const LLM_ERROR_CODES: Partial<Record<LlmError["kind"], string>> = {
  context_window_exceeded: "context_window_exceeded",
  auth_failed: "llm_auth_failed",
  bad_request: "llm_bad_request",
};

export function classifyEarlyStop(err: unknown, reason: AbortReason | null): EarlyStop | null {
  if (err instanceof LeaseLostError || reason === "lease_lost") return { kind: "abandon" };
  if (reason === "shutdown") return { kind: "hand_back" };
  const aborted = err instanceof TurnAborted || (err instanceof LlmError && err.kind === "aborted");
  if (reason === "cancel" && aborted) {
    return {
      kind: "cancelled",
      error: { code: "cancelled", message: "the turn was cancelled", retryable: false },
    };
  }
  if (err instanceof ModelDeferral) return { kind: "defer", deferral: err };
  if (err instanceof LlmError) {
    return {
      kind: "failed",
      error: {
        code: LLM_ERROR_CODES[err.kind] ?? "llm_unavailable",
        message: err.message,
        retryable: err.retryable,
      },
    };
  }
  return null;
}
