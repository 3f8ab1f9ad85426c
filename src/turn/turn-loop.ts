/**
 * The agent loop of one turn: call the model, run the tools it asks for, feed the results back,
 * until it answers without tools or through a terminal tool (`final_response`), the round limit
 * is hit, the tool-failure guard stops it, or the turn is aborted.
 *
 * Invariants:
 * - `completedHistory` only ever holds whole exchanges (an assistant message with tool calls is
 *   followed by one result per call), so whatever way the turn ends, the session history it
 *   leaves is valid input for the next model call;
 * - recorded rounds (from an earlier attempt) are replayed from the record, never re-executed,
 *   and so are the compactions recorded before them (the context then matches the record's).
 */
import type { ContextMessage } from "../context/message.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { ChatResult, ModelClients, ToolSpec } from "../llm/chat-stream.js";
import { LlmError } from "../llm/llm-error.js";
import type { TurnTrace } from "../obs/genai-spans.js";
import type { PromptPipeline } from "../prompt/prompt-pipeline.js";
import type { TurnUsage } from "../store/port.js";
import type { GuardTrip, ToolFailureGuard } from "../tools/orchestrator/failure-guard.js";
import type { ToolOrchestrator } from "../tools/orchestrator/orchestrator.js";
import type { ModelGate } from "./model-gate.js";
import { runModelStep } from "./model-step.js";
import type { RecordedTurn } from "./recorded-turn.js";
import type { TurnContext } from "./turn-context.js";

/** Compactions after a provider's "context length exceeded" before the turn fails with it. */
const MAX_OVERFLOW_RECOVERIES = 2;

export interface TurnLoopInput {
  input: string;
  model: string;
  attempt: number;
  maxRounds: number;
  /** What the model sees: the session's context plus this turn's items, kept within the window. */
  context: TurnContext;
  recorded: RecordedTurn;
  emitter: TurnEmitter;
  signal: AbortSignal;
  clients: ModelClients;
  gate: ModelGate;
  toolSpecs: readonly ToolSpec[];
  pipeline: PromptPipeline;
  /** The session's frozen system prompt, written first when this turn starts the session. */
  systemPrompt: ContextMessage | null;
  orchestrator: ToolOrchestrator;
  guard: ToolFailureGuard;
  /** The turn attempt's trace: its model calls are spans in it. */
  trace?: TurnTrace;
}

export interface TurnAnswer {
  answer: string;
  stopReason: "model_response" | "final_tool" | "max_rounds" | "compacted" | "nothing_to_compact";
}

/** The model calls' own usage (turn-setup.ts adds the compaction summary calls). */
export type RoundsUsage = Required<Omit<TurnUsage, "compaction_tokens" | "context_window_tokens">>;

export function noRoundsUsage(): RoundsUsage {
  return { input_tokens: 0, output_tokens: 0, total_tokens: 0, context_tokens: 0, model_calls: 0 };
}

/** What a turn of any kind runs: the agent loop, or an on-demand compaction. */
export interface TurnRunner {
  /** Items the turn adds to the session history, whole exchanges only. */
  readonly completedHistory: ContextMessage[];
  readonly usage: RoundsUsage;
  run(): Promise<TurnAnswer>;
}

/** The tool-failure guard stopped the turn (its history up to that round is complete). */
export class ToolGuardStop extends Error {
  constructor(readonly trip: GuardTrip) {
    super(trip.message);
    this.name = "ToolGuardStop";
  }
}

export class TurnAborted extends Error {
  constructor() {
    super("turn aborted");
    this.name = "TurnAborted";
  }
}

export class TurnLoop implements TurnRunner {
  /** Items this turn adds to the session history, whole exchanges only. */
  readonly completedHistory: ContextMessage[];
  readonly usage = noRoundsUsage();

  constructor(private readonly input: TurnLoopInput) {
    this.completedHistory = [
      ...(input.systemPrompt ? [input.systemPrompt] : []),
      { role: "user", content: input.input },
    ];
    input.context.append(...this.completedHistory);
  }

  async run(): Promise<TurnAnswer> {
    const i = this.input;
    let lastContent = "";
    for (let round = 1; round <= i.maxRounds; round++) {
      this.throwIfAborted();
      const recordedOutput = i.recorded.outputs.get(round);
      if (recordedOutput) await i.context.replayRecorded(round, i.toolSpecs);
      const output = recordedOutput ?? (await this.callModel(round));
      this.throwIfAborted();
      this.addUsage(output.usage);
      lastContent = output.content;
      if (output.toolCalls.length === 0) {
        this.record({ role: "assistant", content: output.content });
        return { answer: output.content, stopReason: "model_response" };
      }
      const tools = await i.orchestrator.runRound(round, output.toolCalls);
      this.throwIfAborted();
      this.record(
        { role: "assistant", content: output.content, tool_calls: output.toolCalls },
        ...tools.observations,
      );
      const trip = i.guard.afterRound(tools.guard);
      if (trip) throw new ToolGuardStop(trip);
      if (tools.final) return { answer: tools.final.answer, stopReason: "final_tool" };
    }
    return { answer: lastContent, stopReason: "max_rounds" };
  }

  /**
   * One model round on a context that fits: compacted first when the request would cross the
   * trigger, and again (up to MAX_OVERFLOW_RECOVERIES times) when the provider still says the
   * context is too long.
   */
  private async callModel(round: number): Promise<ChatResult> {
    const i = this.input;
    // The same list every round: what is rendered or counted from it is cached per list.
    const tools = i.toolSpecs;
    for (let recoveries = 0; ; recoveries++) {
      const { messages, usage: contextUsage } = await i.context.ensureFits(
        round,
        tools,
        recoveries > 0 ? "overflow_recovery" : "threshold",
      );
      this.throwIfAborted();
      try {
        const output = await runModelStep({
          clients: i.clients,
          gate: i.gate,
          emitter: i.emitter,
          signal: i.signal,
          model: i.model,
          round,
          attempt: i.attempt,
          messages,
          tools,
          pipeline: i.pipeline,
          contextUsage,
          staleDeltas: i.recorded.roundsWithDeltas.has(round),
          trace: i.trace,
        });
        if (output.usage) i.context.observeUsage(output.usage, messages, tools);
        return output;
      } catch (err) {
        const overflow = err instanceof LlmError && err.kind === "context_window_exceeded";
        if (!overflow || recoveries >= MAX_OVERFLOW_RECOVERIES) throw err;
      }
    }
  }

  /** Adds items to the turn's history and to what the model sees. */
  private record(...items: ContextMessage[]): void {
    this.completedHistory.push(...items);
    this.input.context.append(...items);
  }

  private addUsage(
    usage: { input_tokens: number; output_tokens: number; total_tokens: number } | null,
  ) {
    if (!usage) return;
    this.usage.input_tokens += usage.input_tokens;
    this.usage.output_tokens += usage.output_tokens;
    this.usage.total_tokens += usage.total_tokens;
    this.usage.model_calls++;
    // Occupancy: what the last call put in the window (its prompt plus its answer).
    this.usage.context_tokens = usage.input_tokens + usage.output_tokens;
  }

  private throwIfAborted(): void {
    if (this.input.signal.aborted) throw new TurnAborted();
  }
}
