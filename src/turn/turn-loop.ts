/**
 * The agent loop of one turn: call the model, run the tools it asks for, feed the results back,
 * until it answers without tools, the round limit is hit, or the turn is aborted.
 *
 * Invariants:
 * - `completedHistory` only ever holds whole exchanges (an assistant message with tool calls is
 *   followed by one result per call), so whatever way the turn ends, the session history it
 *   leaves is valid input for the next model call;
 * - recorded rounds (from an earlier attempt) are replayed from the record, never re-executed.
 */
import type { ContextMessage } from "../context/message.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { ModelClients, ToolSpec } from "../llm/chat-stream.js";
import type { TurnUsage } from "../store/port.js";
import type { Tool, ToolLimits } from "../tools/tool.js";
import type { ModelGate } from "./model-gate.js";
import { runModelStep } from "./model-step.js";
import type { RecordedTurn } from "./recorded-turn.js";
import { runToolStep } from "./tool-step.js";

export interface TurnLoopInput {
  input: string;
  model: string;
  attempt: number;
  maxRounds: number;
  /** The session's history before this turn. */
  history: ContextMessage[];
  recorded: RecordedTurn;
  emitter: TurnEmitter;
  signal: AbortSignal;
  clients: ModelClients;
  gate: ModelGate;
  tools: ReadonlyMap<string, Tool>;
  toolSpecs: ToolSpec[];
  workspaceRoot: string;
  limits: ToolLimits;
  resultMaxChars: number;
}

export interface TurnAnswer {
  answer: string;
  stopReason: "model_response" | "max_rounds";
}

export class TurnAborted extends Error {
  constructor() {
    super("turn aborted");
    this.name = "TurnAborted";
  }
}

export class TurnLoop {
  /** Items this turn adds to the session history, whole exchanges only. */
  readonly completedHistory: ContextMessage[];
  readonly usage: TurnUsage = {
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    context_tokens: 0,
  };

  constructor(private readonly input: TurnLoopInput) {
    this.completedHistory = [{ role: "user", content: input.input }];
  }

  async run(): Promise<TurnAnswer> {
    const i = this.input;
    let lastContent = "";
    for (let round = 1; round <= i.maxRounds; round++) {
      this.throwIfAborted();
      const output =
        i.recorded.outputs.get(round) ??
        (await runModelStep({
          clients: i.clients,
          gate: i.gate,
          emitter: i.emitter,
          signal: i.signal,
          model: i.model,
          round,
          attempt: i.attempt,
          messages: [...i.history, ...this.completedHistory],
          tools: i.toolSpecs,
          staleDeltas: i.recorded.roundsWithDeltas.has(round),
        }));
      this.throwIfAborted();
      this.addUsage(output.usage);
      lastContent = output.content;
      if (output.toolCalls.length === 0) {
        this.completedHistory.push({ role: "assistant", content: output.content });
        return { answer: output.content, stopReason: "model_response" };
      }
      const observations = await runToolStep({
        emitter: i.emitter,
        signal: i.signal,
        round,
        calls: output.toolCalls,
        tools: i.tools,
        workspaceRoot: i.workspaceRoot,
        limits: i.limits,
        resultMaxChars: i.resultMaxChars,
        recorded: i.recorded,
      });
      this.throwIfAborted();
      this.completedHistory.push(
        { role: "assistant", content: output.content, tool_calls: output.toolCalls },
        ...observations,
      );
    }
    return { answer: lastContent, stopReason: "max_rounds" };
  }

  private addUsage(
    usage: { input_tokens: number; output_tokens: number; total_tokens: number } | null,
  ) {
    if (!usage) return;
    this.usage.input_tokens += usage.input_tokens;
    this.usage.output_tokens += usage.output_tokens;
    this.usage.total_tokens += usage.total_tokens;
    // Occupancy: what the last call put in the window (its prompt plus its answer).
    this.usage.context_tokens = usage.input_tokens + usage.output_tokens;
  }

  private throwIfAborted(): void {
    if (this.input.signal.aborted) throw new TurnAborted();
  }
}
