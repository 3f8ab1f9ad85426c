/**
 * What the model sees during one turn, kept within the model's window: the session's context
 * (its snapshot plus the history after it) and this turn's items, normalized before every call
 * and compacted when the next request would cross the trigger, when a provider still answers
 * "context length exceeded", or when the turn's own input is larger than the window.
 *
 * Invariants:
 * - `view()` is always a valid history (normalize.ts) and, once `ensureFits` ran, within
 *   `budget.limitTokens` with the tool specs;
 * - the turn's real items (what the session's history keeps) are not this class's business: a
 *   compaction changes what the model sees, never what is stored; the compacted view is saved
 *   as a snapshot when the turn ends;
 * - every compaction is one `compaction` event (and one log line) with the same fields.
 */
import { type ContextBudget, contextBudget } from "../context/budget.js";
import {
  type CompactionResult,
  type CompactionSettings,
  compact,
} from "../context/compaction/compactor.js";
import type { ContextMessage } from "../context/message.js";
import { normalizeHistory } from "../context/normalize.js";
import type { TokenCalibration } from "../context/token-calibration.js";
import { countPrompt, countPromptTokens, countTextTokens } from "../context/token-count.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { ModelClients, ToolSpec } from "../llm/chat-stream.js";
import type { Logger } from "../obs/logger.js";
import type { ModelGate } from "./model-gate.js";

export type CompactionTrigger = "threshold" | "overflow_recovery" | "oversized_input";

export interface TurnContextDeps {
  model: string;
  clients: ModelClients;
  gate: ModelGate;
  emitter: TurnEmitter;
  signal: AbortSignal;
  calibration: TokenCalibration;
  settings: CompactionSettings & { triggerRatio: number; safetyMarginTokens: number };
  attempt: number;
  log: Logger;
}

export interface SummaryUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export class TurnContext {
  private items: ContextMessage[];
  private compactions = 0;
  readonly budget: ContextBudget;
  /** Tokens the summary calls of this turn used (added to the turn's consumption). */
  readonly summaryUsage: SummaryUsage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

  constructor(
    prior: readonly ContextMessage[],
    private readonly deps: TurnContextDeps,
  ) {
    this.items = [...prior];
    const model = deps.clients.config(deps.model);
    this.budget = contextBudget({
      windowTokens: model.contextWindowTokens,
      reservedOutputTokens: model.maxOutputTokens,
      safetyMarginTokens: deps.settings.safetyMarginTokens,
      triggerRatio: deps.settings.triggerRatio,
    });
  }

  /** True once the view was compacted: the turn's end saves it as a snapshot. */
  get compacted(): boolean {
    return this.compactions > 0;
  }

  append(...items: ContextMessage[]): void {
    this.items.push(...items);
  }

  view(): ContextMessage[] {
    return normalizeHistory(this.items).items;
  }

  /**
   * After a call: teaches the calibration what the provider counted for the request `ensureFits`
   * returned.
   */
  observeUsage(
    reportedPromptTokens: number,
    messages: readonly ContextMessage[],
    tools: readonly ToolSpec[],
  ): void {
    this.deps.calibration.observe(
      this.deps.model,
      reportedPromptTokens,
      countPrompt(messages, tools),
    );
  }

  /**
   * The next request's messages and projected (calibrated) tokens, compacted first when they
   * would reach the trigger (or must shrink, `overflow_recovery`).
   */
  async ensureFits(
    round: number,
    tools: readonly ToolSpec[],
    trigger: CompactionTrigger = "threshold",
  ): Promise<{ messages: ContextMessage[]; tokens: number }> {
    const messages = this.view();
    const projected = this.deps.calibration.estimate(this.deps.model, countPrompt(messages, tools));
    const forced = trigger === "overflow_recovery";
    if (!forced && projected < this.budget.triggerTokens) return { messages, tokens: projected };
    const oversized = !forced && this.items.filter((m) => m.role === "user").length <= 1;
    const why: CompactionTrigger = forced
      ? trigger
      : oversized && projected > this.budget.limitTokens
        ? "oversized_input"
        : "threshold";
    const result = await this.compactNow(round, messages, tools, why);
    return { messages: this.view(), tokens: result.tokensAfter };
  }

  private async compactNow(
    round: number,
    messages: ContextMessage[],
    tools: readonly ToolSpec[],
    trigger: CompactionTrigger,
  ): Promise<CompactionResult> {
    const { deps } = this;
    const started = performance.now();
    const ratio = deps.calibration.ratio(deps.model);
    const toolsTokens = deps.calibration.estimate(deps.model, countPrompt([], tools));
    const result = await compact({
      messages,
      toolsTokens,
      budget:
        trigger === "overflow_recovery"
          ? // The provider counted more than we did: aim lower than our own limit.
            { ...this.budget, limitTokens: Math.floor(this.budget.limitTokens * 0.8) }
          : this.budget,
      settings: {
        ...deps.settings,
        // Verbatim parts scale down with small windows, or they alone would fill them.
        keepHeadTokens: Math.min(
          deps.settings.keepHeadTokens,
          Math.floor(this.budget.limitTokens / 10),
        ),
        keepTailTokens: Math.min(
          deps.settings.keepTailTokens,
          Math.floor(this.budget.limitTokens / 4),
        ),
        summaryMaxTokens: Math.min(
          deps.settings.summaryMaxTokens,
          Math.floor(this.budget.limitTokens / 6),
        ),
      },
      count: {
        messages: (ms) => deps.calibration.estimate(deps.model, countPrompt(ms)),
        text: (t) => Math.ceil(countTextTokens(t) * ratio),
      },
      summarize: (request) => this.summarize(request),
    });
    this.items = result.messages;
    this.compactions++;
    const data = {
      model_round: round,
      reason:
        trigger === "threshold"
          ? "history"
          : trigger === "overflow_recovery"
            ? "overflow"
            : "oversized_input",
      trigger,
      strategy: result.strategy,
      status: result.status,
      tokens_before: result.tokensBefore,
      tokens_after: result.tokensAfter,
      limit_tokens: this.budget.limitTokens,
      trigger_tokens: this.budget.triggerTokens,
      window_tokens: this.budget.windowTokens,
      summary_chars: result.summary?.content.length ?? 0,
      retained_items: result.retainedItems,
      duration_ms: Math.round(performance.now() - started),
      summary_ms: Math.round(result.summaryMs),
      ...(result.summaryError !== undefined ? { summary_error: result.summaryError } : {}),
    };
    deps.emitter.emit(
      "compaction",
      `r${round}.a${deps.attempt}.compaction.${this.compactions}`,
      data,
    );
    deps.log.info("context compacted", data);
    return result;
  }

  private async summarize(request: ContextMessage[]): Promise<string> {
    const { deps } = this;
    const tokens = countPromptTokens(request);
    const permit = await deps.gate.take(deps.model, tokens, deps.signal);
    try {
      const result = await deps.clients.stream(deps.model, {
        messages: request,
        tools: [],
        signal: deps.signal,
        onDelta: () => undefined,
      });
      await permit.release(result.usage?.total_tokens ?? tokens);
      if (result.usage) {
        this.summaryUsage.input_tokens += result.usage.input_tokens;
        this.summaryUsage.output_tokens += result.usage.output_tokens;
        this.summaryUsage.total_tokens += result.usage.total_tokens;
      }
      return result.content;
    } catch (err) {
      await permit.release().catch(() => undefined);
      throw err;
    }
  }
}
