/**
 * What earlier attempts of a turn already did, read back from its events, so a resumed attempt
 * (after a worker crash or a hand-back on shutdown) continues instead of starting over.
 *
 * The event log is the turn's source of truth: a model round whose `llm_output` is recorded is
 * not called again and a tool call whose `tool_result` is recorded is not run again, so replaying
 * the loop over the record rebuilds the turn's state without side effects. A round that streamed
 * deltas but never recorded its output is redone; the new attempt tells clients to drop that
 * text (`reset_output`). A compaction is replayed from its `compaction` event (its summary and the
 * calibration it counted with), so a resumed attempt rebuilds the same compacted context
 * without a second summary call. (`final`/`error` need no replay: they are only ever emitted after the
 * store recorded the outcome, and a turn the store calls finished is closed out, not resumed.)
 */
import type { ToolCall } from "../context/message.js";
import type { CalibrationFit } from "../context/token-calibration.js";
import type { LogEvent } from "../events/event-log.js";
import { checkToolResultVersion } from "../events/schema-version.js";
import type { ChatUsage } from "../llm/chat-stream.js";
import type { ToolResultMeta, ToolResultRecord } from "../tools/orchestrator/tool-result.js";

export interface RecordedOutput {
  content: string;
  toolCalls: ToolCall[];
  finishReason: string;
  usage: ChatUsage | null;
}

export interface RecordedToolResult extends ToolResultRecord {
  /** The call never reached a tool (bad JSON, unknown tool, invalid arguments). */
  invalid?: boolean;
}

/** What a resumed attempt needs to redo a compaction exactly as it was done. */
export interface RecordedCompaction {
  trigger: CompactionTrigger;
  calibration: CalibrationFit;
  /** The summary call's answer, when the call answered, and the tokens it cost. */
  summary?: string;
  summaryUsage?: ChatUsage | null;
  /** The tool specs' tokens and the limit the compaction aimed at. */
  toolsTokens?: number;
  targetTokens?: number;
  /** Why the summary was not used, when it was tried and failed. */
  summaryError?: string;
}

export type CompactionTrigger = "threshold" | "overflow_recovery" | "oversized_input" | "manual";
const TRIGGERS: readonly string[] = ["threshold", "overflow_recovery", "oversized_input", "manual"];

export class RecordedTurn {
  readonly outputs = new Map<number, RecordedOutput>();
  readonly toolResults = new Map<string, RecordedToolResult>();
  /** Rounds that streamed text in an earlier attempt. */
  readonly roundsWithDeltas = new Set<number>();
  /** Compactions by `${round}.${index within the round}`. */
  private readonly compactions = new Map<string, RecordedCompaction>();
  /** The turn's `turn_terminal` is in the log. */
  ended = false;

  static readonly empty = new RecordedTurn();

  static fromEvents(turnId: string, events: LogEvent[]): RecordedTurn {
    const recorded = new RecordedTurn();
    for (const event of events) {
      if (event.turnId === turnId) recorded.add(event);
    }
    return recorded;
  }

  get isEmpty(): boolean {
    return (
      this.outputs.size === 0 && this.roundsWithDeltas.size === 0 && this.compactions.size === 0
    );
  }

  toolResult(round: number, callId: string): RecordedToolResult | undefined {
    return this.toolResults.get(`${round}:${callId}`);
  }

  /** The `index`-th compaction (1-based) done before round `round`'s model call. */
  compaction(round: number, index: number): RecordedCompaction | undefined {
    return this.compactions.get(`${round}.${index}`);
  }

  private add(event: LogEvent): void {
    const { data } = JSON.parse(event.envelope) as { data: Record<string, unknown> };
    const round = Number(data.model_round);
    switch (event.type) {
      case "llm_output_delta":
        this.roundsWithDeltas.add(round);
        break;
      case "llm_output":
        this.outputs.set(round, {
          content: String(data.content ?? ""),
          toolCalls: (data.tool_calls as ToolCall[] | undefined) ?? [],
          finishReason: String(data.finish_reason ?? "stop"),
          usage: (data.usage as ChatUsage | null | undefined) ?? null,
        });
        break;
      case "tool_result":
        checkToolResultVersion(data.result_v);
        this.toolResults.set(`${round}:${String(data.tool_call_id)}`, {
          ok: data.ok === true,
          data: data.data ?? null,
          ...(typeof data.error === "string" ? { error: data.error } : {}),
          ...(typeof data.preview === "string" ? { preview: data.preview } : {}),
          ...(data.meta ? { meta: data.meta as ToolResultMeta } : {}),
          ...(data.invalid === true ? { invalid: true } : {}),
        });
        break;
      case "compaction": {
        const calibration = data.calibration as CalibrationFit | undefined;
        const trigger = String(data.trigger);
        // Events written before compactions were replayable lack these: the round compacts anew.
        if (!calibration || !TRIGGERS.includes(trigger) || typeof data.index !== "number") break;
        this.compactions.set(`${round}.${data.index}`, {
          trigger: trigger as CompactionTrigger,
          calibration,
          ...(typeof data.summary === "string" ? { summary: data.summary } : {}),
          ...(data.summary_usage ? { summaryUsage: data.summary_usage as ChatUsage } : {}),
          ...(typeof data.tools_tokens === "number" ? { toolsTokens: data.tools_tokens } : {}),
          ...(typeof data.target_tokens === "number" ? { targetTokens: data.target_tokens } : {}),
          ...(typeof data.summary_error === "string" ? { summaryError: data.summary_error } : {}),
        });
        break;
      }
      case "turn_terminal":
        this.ended = true;
        break;
      default:
        break;
    }
  }
}
