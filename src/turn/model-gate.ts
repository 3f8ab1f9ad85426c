/**
 * A turn's access to a model's shared budget (see src/llm/model-budget.ts): wait in the worker
 * slot while the wait is short, otherwise give the slot up.
 *
 * Invariants:
 * - one attempt of a turn waits in place at most `maxWaitMs` in total; a longer wait throws
 *   ModelDeferral, and the runner parks the turn's job until the budget is expected back,
 *   so a model that is rate limited never keeps workers from turns of other models;
 * - waits end at once when the turn is aborted.
 */

import { LlmError } from "../llm/llm-error.js";
import type { BudgetPermit, ModelBudget } from "../llm/model-budget.js";

/** The model's budget is not expected back soon: hand the turn back until `retryAfterMs`. */
export class ModelDeferral extends Error {
  constructor(
    readonly model: string,
    readonly reason: string,
    readonly retryAfterMs: number,
  ) {
    super(`model "${model}" is held back (${reason}) for ${retryAfterMs} ms`);
    this.name = "ModelDeferral";
  }
}

export class ModelGate {
  private waitedMs = 0;

  constructor(
    private readonly budget: ModelBudget,
    private readonly maxWaitMs: number,
  ) {}

  /** A permit for one call of `model`, after waiting in place if that stays within bounds. */
  async take(model: string, estimatedTokens: number, signal: AbortSignal): Promise<BudgetPermit> {
    for (;;) {
      const verdict = await this.budget.tryAcquire(model, estimatedTokens);
      if (verdict.ok) return verdict;
      if (this.waitedMs + verdict.retryAfterMs > this.maxWaitMs) {
        throw new ModelDeferral(model, verdict.reason, verdict.retryAfterMs);
      }
      await sleep(verdict.retryAfterMs, signal);
      this.waitedMs += verdict.retryAfterMs;
      if (signal.aborted) throw new LlmError("aborted", "request aborted");
    }
  }

  /** A provider answered 429: every worker holds calls to the model for `holdMs`. */
  coolDown(model: string, holdMs: number): Promise<void> {
    return this.budget.coolDown(model, holdMs);
  }
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
