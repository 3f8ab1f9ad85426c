/**
 * What one tool call leaves in the turn's observability besides its events: an
 * `execute_tool <tool>` span under the attempt's span, and one log line with `tool` and
 * `tool_call_id` — debug when the call succeeded, info otherwise (a failure is worth reading
 * without turning the level up).
 *
 * Invariant: `settled` or `threw` is called exactly once per started trace, so the span always
 * ends.
 */
import type { ToolCall } from "../../context/message.js";
import { ToolSpan, type ToolSpanOutcome, type TurnTrace } from "../../obs/genai-spans.js";
import type { Logger } from "../../obs/logger.js";
import type { ToolResultRecord } from "./tool-result.js";

/** A settled call as the orchestrator records it; null when an abort left nothing to record. */
type SettledCall = { record: ToolResultRecord; invalid: boolean } | null;

export class CallTrace {
  private constructor(
    private readonly span: ToolSpan,
    private readonly log: Logger,
    private readonly call: ToolCall,
    private readonly round: number,
  ) {}

  static start(
    trace: TurnTrace | undefined,
    log: Logger,
    round: number,
    call: ToolCall,
    source: string | null,
  ): CallTrace {
    return new CallTrace(ToolSpan.start(trace, call, source), log, call, round);
  }

  settled(settled: SettledCall): void {
    const outcome = callOutcome(settled);
    this.span.end(outcome);
    this.log.log(outcome === "ok" ? "debug" : "info", "tool call settled", {
      tool: this.call.name,
      tool_call_id: this.call.id,
      model_round: this.round,
      outcome,
      duration_ms: settled?.record.meta?.duration_ms,
      attempts: settled?.record.meta?.attempts,
    });
  }

  /** The orchestrator itself threw (a bug or a lost lease): the turn's error says the rest. */
  threw(): void {
    this.span.end("error");
  }
}

function callOutcome(settled: SettledCall): ToolSpanOutcome {
  if (!settled) return "not_recorded";
  const { record, invalid } = settled;
  if (record.ok) return "ok";
  if (invalid) return "invalid_call";
  if (record.meta?.aborted) return "aborted";
  if (record.meta?.timed_out) return "timeout";
  return "error";
}
