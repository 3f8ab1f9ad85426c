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
 * - every compaction is one `compaction` event (and one log line) with the same fields, keyed by
 *   round and index within the round: a resumed attempt replays a recorded compaction (same
 *   summary, same calibration, so the same context) instead of summarising again;
 * - occupancy (`context_tokens` of `context_usage`) is the provider's last report plus estimates
 *   of what came after it; after a compaction it is an estimate until the next report.
 */
import { type ContextBudget, contextBudget } from "../context/budget.js";
import {
  type CompactionResult,
  type CompactionSettings,
  compact,
} from "../context/compaction/compactor.js";
import type { ContextMessage } from "../context/message.js";
import { normalizeHistory, splitExchanges } from "../context/normalize.js";
import { calibratedTokens, fitRatio, type TokenCalibration } from "../context/token-calibration.js";
import { countPrompt, countTextTokens, countTools } from "../context/token-count.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { ChatUsage, ModelClients, ToolSpec } from "../llm/chat-stream.js";
import type { TurnTrace } from "../obs/genai-spans.js";
import type { Logger } from "../obs/logger.js";
import { ModelDeferral, type ModelGate } from "./model-gate.js";
import type { CompactionTrigger, RecordedCompaction, RecordedTurn } from "./recorded-turn.js";
import { callSummaryModel, type SummaryAnswer } from "./summary-call.js";
import { turnMetrics } from "./turn-metrics.js";

export type { CompactionTrigger };

export interface TurnContextDeps {
  model: string;
  clients: ModelClients;
  gate: ModelGate;
  emitter: TurnEmitter;
  signal: AbortSignal;
  calibration: TokenCalibration;
  settings: CompactionSettings & { triggerRatio: number; safetyMarginTokens: number };
  attempt: number;
  /** Earlier attempts' record: their compactions are replayed, not redone. */
  recorded: RecordedTurn;
  log: Logger;
  /** The turn attempt's trace: summary calls are spans in it. */
  trace?: TurnTrace;
}

/**
 * The `context_usage` event's data: how full the window is before a call (occupancy) and what the
 * request about to go out is projected to cost.
 */
export interface ContextUsage {
  /**
   * Occupancy: the provider-reported prompt + answer tokens of this turn's last call plus the
   * estimate of what was appended since; the estimate alone before the first report and after a
   * compaction (`context_usage_source` says which).
   */
  context_tokens: number;
  context_usage_source: "provider_observed" | "estimated";
  /** The last call's reported prompt + answer tokens (0 when unobserved). */
  observed_context_tokens: number;
  /** The request's calibrated estimate, tool specs included: what the model gate is asked for. */
  projected_request_tokens: number;
  message_count: number;
  max_context: number;
  limit_tokens: number;
  trigger_tokens: number;
}

export interface FittedRequest {
  messages: ContextMessage[];
  usage: ContextUsage;
}

export interface SummaryUsage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  calls: number;
}

export class TurnContext {
  private items: ContextMessage[];
  private compactions = 0;
  /** A compaction gained nothing: later ones of this turn skip the (paid) summary. */
  private summaryGainsNothing = false;
  /** Compactions done before each round's call (a round can compact again on overflow). */
  private readonly roundCompactions = new Map<number, number>();
  /** The last call's reported occupancy and how many items it covered; null when unobserved. */
  private observed: { tokens: number; itemCount: number } | null = null;
  readonly budget: ContextBudget;
  /** Tokens the summary calls of this turn used (added to the turn's consumption). */
  readonly summaryUsage: SummaryUsage = {
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    calls: 0,
  };

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
   * returned, and takes its prompt + answer as the observed occupancy.
   */
  observeUsage(
    reported: { input_tokens: number; output_tokens: number },
    messages: readonly ContextMessage[],
    tools: readonly ToolSpec[],
  ): void {
    this.deps.calibration.observe(
      this.deps.model,
      reported.input_tokens,
      countPrompt(messages, tools),
    );
    this.observed = {
      tokens: reported.input_tokens + reported.output_tokens,
      itemCount: this.items.length,
    };
  }

  /**
   * The next request's messages and projected (calibrated) tokens, compacted first when they
   * would reach the trigger (or must shrink, `overflow_recovery`).
   */
  async ensureFits(
    round: number,
    tools: readonly ToolSpec[],
    trigger: CompactionTrigger = "threshold",
  ): Promise<FittedRequest> {
    // An earlier attempt's compactions before this call come first, all of them: it may have
    // compacted again after the provider refused the length.
    if (this.deps.recorded.compaction(round, this.nextIndex(round))) {
      await this.replayRecorded(round, tools);
      const replayed = this.view();
      return { messages: replayed, usage: this.usage(replayed, this.estimate(replayed, tools)) };
    }
    const messages = this.view();
    const projected = this.estimate(messages, tools);
    const forced = trigger === "overflow_recovery";
    if (!forced && projected < this.budget.triggerTokens) {
      return { messages, usage: this.usage(messages, projected) };
    }
    const why: CompactionTrigger = forced
      ? trigger
      : projected > this.budget.limitTokens && this.inputAloneTooLarge(messages, tools)
        ? "oversized_input"
        : "threshold";
    const result = await this.compactNow(round, messages, tools, why);
    const compacted = this.view();
    return { messages: compacted, usage: this.usage(compacted, result?.tokensAfter ?? projected) };
  }

  /**
   * Compacts the context now, whatever its size (a manual compaction, recorded as round 0).
   * Null, with a `skipped` compaction event, when there is nothing before the last exchange to
   * compact.
   */
  async compactOnDemand(): Promise<CompactionResult | null> {
    const messages = this.view();
    const round = 0;
    const exchanges = splitExchanges(messages.filter((m) => m.role !== "system"));
    const recorded = this.deps.recorded.compaction(round, this.nextIndex(round));
    const result =
      exchanges.length < 2 ? null : await this.compactNow(round, messages, [], "manual", recorded);
    if (result) return result;
    const tokens = this.estimate(messages);
    this.deps.emitter.emit("compaction", `r${round}.compaction.${this.nextIndex(round)}`, {
      model_round: round,
      index: this.nextIndex(round),
      reason: "manual",
      trigger: "manual",
      strategy: "none",
      status: "skipped",
      skip_reason: exchanges.length < 2 ? "no_candidates" : "no_gain",
      tokens_before: tokens,
      tokens_after: tokens,
      limit_tokens: this.budget.limitTokens,
      trigger_tokens: this.budget.triggerTokens,
      window_tokens: this.budget.windowTokens,
    });
    return null;
  }

  /** True when the current user input with the tool specs cannot fit the limit on its own. */
  private inputAloneTooLarge(messages: ContextMessage[], tools: readonly ToolSpec[]): boolean {
    const input = messages.findLast((m) => m.role === "user");
    return input !== undefined && this.estimate([input], tools) > this.budget.limitTokens;
  }

  /** The calibrated tokens of the context as it is now (no tool specs). */
  viewTokens(): number {
    return this.estimate(this.view());
  }

  /**
   * For a round an earlier attempt completed (its output is replayed, its call not made again):
   * redoes the compactions recorded before that call, so later rounds see the same context.
   */
  async replayRecorded(round: number, tools: readonly ToolSpec[]): Promise<void> {
    for (;;) {
      const recorded = this.deps.recorded.compaction(round, this.nextIndex(round));
      if (!recorded) return;
      await this.compactNow(round, this.view(), tools, recorded.trigger, recorded);
    }
  }

  private nextIndex(round: number): number {
    return (this.roundCompactions.get(round) ?? 0) + 1;
  }

  private estimate(messages: readonly ContextMessage[], tools: readonly ToolSpec[] = []): number {
    return this.deps.calibration.estimate(this.deps.model, countPrompt(messages, tools));
  }

  private usage(messages: readonly ContextMessage[], projected: number): ContextUsage {
    const observed = this.observed;
    // The answer that follows the observed call is already in its reported output tokens.
    const since = observed ? this.items.slice(observed.itemCount) : [];
    if (since[0]?.role === "assistant") since.shift();
    const occupancy = observed
      ? observed.tokens + (since.length > 0 ? this.estimate(since) : 0)
      : projected;
    return {
      context_tokens: occupancy,
      context_usage_source: observed ? "provider_observed" : "estimated",
      observed_context_tokens: observed?.tokens ?? 0,
      projected_request_tokens: projected,
      message_count: messages.length,
      max_context: this.budget.windowTokens,
      limit_tokens: this.budget.limitTokens,
      trigger_tokens: this.budget.triggerTokens,
    };
  }

  /**
   * Compacts `messages` (the current view) and emits the `compaction` event. A `replay` redoes a
   * recorded compaction: same calibration, same summary (or the same summary failure), so the
   * result is the same without calling the model again. Null when a compaction the context did
   * not strictly need (threshold, manual) would not make it smaller: nothing is changed or
   * recorded, and this turn tries no more summaries (its older exchanges stay what they are).
   */
  private async compactNow(
    round: number,
    messages: ContextMessage[],
    tools: readonly ToolSpec[],
    trigger: CompactionTrigger,
    replay?: RecordedCompaction,
  ): Promise<CompactionResult | null> {
    const { deps } = this;
    const started = performance.now();
    const index = this.nextIndex(round);
    const fit = replay?.calibration ?? deps.calibration.fit(deps.model);
    const ratio = fitRatio(fit);
    // What the result depends on besides the context: recorded, so a replay uses the same.
    // The specs alone: the reply priming is counted once, with the messages.
    const toolsTokens = replay?.toolsTokens ?? calibratedTokens(fit, countTools(tools));
    const targetTokens =
      replay?.targetTokens ??
      (trigger === "overflow_recovery"
        ? // The provider counted more than we did: aim lower than our own limit.
          Math.floor(this.budget.limitTokens * 0.8)
        : this.budget.limitTokens);
    let summary: SummaryAnswer | undefined;
    const result = await compact({
      messages,
      toolsTokens,
      budget: { ...this.budget, limitTokens: targetTokens },
      settings: this.scaledSettings(),
      count: {
        messages: (ms) => calibratedTokens(fit, countPrompt(ms)),
        text: (t) => Math.ceil(countTextTokens(t) * ratio),
      },
      summarize: async (request) => {
        summary = replay ? replayedSummary(replay) : await callSummaryModel(deps, request);
        this.addSummaryUsage(summary.usage);
        return summary.content;
      },
      // A wait for the model's budget parks the turn; it compacts once the budget is back.
      isCallerError: (err) => err instanceof ModelDeferral,
      noSummary: this.summaryGainsNothing,
    });
    const optional = trigger === "threshold" || trigger === "manual";
    if (!replay && optional && result.tokensAfter >= result.tokensBefore) {
      this.summaryGainsNothing = true;
      deps.log.debug("context compaction gained nothing", {
        model_round: round,
        tokens: result.tokensBefore,
      });
      return null;
    }
    this.items = result.messages;
    this.observed = null;
    this.compactions++;
    this.roundCompactions.set(round, index);
    const data = {
      model_round: round,
      index,
      reason: COMPACTION_REASONS[trigger],
      trigger,
      strategy: result.strategy,
      status: result.status,
      tokens_before: result.tokensBefore,
      tokens_after: result.tokensAfter,
      limit_tokens: this.budget.limitTokens,
      trigger_tokens: this.budget.triggerTokens,
      window_tokens: this.budget.windowTokens,
      target_tokens: targetTokens,
      tools_tokens: toolsTokens,
      summary_chars: result.summary?.content.length ?? 0,
      retained_items: result.retainedItems,
      duration_ms: Math.round(performance.now() - started),
      summary_ms: Math.round(result.summaryMs),
      ...(result.summaryError !== undefined ? { summary_error: result.summaryError } : {}),
    };
    // One event per compaction of the round, whatever the attempt: a replay appends nothing new.
    deps.emitter.emit("compaction", `r${round}.compaction.${index}`, {
      ...data,
      calibration: fit,
      ...(summary !== undefined ? { summary: summary.content, summary_usage: summary.usage } : {}),
    });
    deps.log.info(replay ? "context compaction replayed" : "context compacted", data);
    if (!replay) {
      const saved = result.tokensBefore - result.tokensAfter;
      turnMetrics.compacted(data.reason, result.strategy, result.status, saved);
    }
    return result;
  }

  /** The settings, with verbatim parts scaled down for small windows (or they alone fill it). */
  private scaledSettings(): CompactionSettings {
    const { settings } = this.deps;
    const limit = this.budget.limitTokens;
    return {
      ...settings,
      keepHeadTokens: Math.min(settings.keepHeadTokens, Math.floor(limit / 10)),
      keepTailTokens: Math.min(settings.keepTailTokens, Math.floor(limit / 4)),
      summaryMaxTokens: Math.min(settings.summaryMaxTokens, Math.floor(limit / 6)),
    };
  }

  private addSummaryUsage(usage: ChatUsage | null): void {
    this.summaryUsage.calls++;
    if (!usage) return;
    this.summaryUsage.input_tokens += usage.input_tokens;
    this.summaryUsage.output_tokens += usage.output_tokens;
    this.summaryUsage.total_tokens += usage.total_tokens;
  }
}

/** The `reason` a compaction event gives for each trigger (wunder's vocabulary). */
const COMPACTION_REASONS: Record<CompactionTrigger, string> = {
  threshold: "history",
  overflow_recovery: "overflow",
  oversized_input: "oversized_input",
  manual: "manual",
};

/** What the recorded summary call gave: its answer (and what it cost), or its failure again. */
function replayedSummary(replay: RecordedCompaction): SummaryAnswer {
  if (replay.summary !== undefined) {
    return { content: replay.summary, usage: replay.summaryUsage ?? null };
  }
  throw new Error(replay.summaryError ?? "the recorded compaction made no summary call");
}
