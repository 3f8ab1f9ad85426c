/**
 * What one running turn attempt is doing, derived from the events it emits and the model text it
 * streams: its stage, the tools running, time to first token, output token speeds and prompt
 * size. Pure: no I/O, no timers; every input carries its own time (epoch ms).
 *
 * Invariants:
 * - a model call starts at `progress{stage:"llm_call"}` (the request goes out with its budget
 *   permit) and ends at its `llm_output`; an `llm_stream_retry` drops the try in progress, with
 *   whatever it streamed;
 * - time to first token = first streamed text − call start. A call that streams no text (an
 *   answer of native tool calls only) has none, and no speed;
 * - a speed is the tokens after the first one over the time since the first one (the decode
 *   rate, prefill excluded); the provider's output token count replaces the local estimate once
 *   the call ends; a window shorter than MIN_SPEED_WINDOW_MS gives no speed (noise);
 * - streamed text is tokenized when a snapshot is taken, not per delta, so a delta costs one
 *   string append however often snapshots are taken.
 */

import { countTextTokens } from "../context/token-count.js";
import type { MonitorStage } from "../contract/admin.js";
import type { EventType } from "../events/envelope.js";
import type { TurnKind } from "../store/port.js";

const MIN_SPEED_WINDOW_MS = 100;

/** The part of a monitor entry this module owns. */
export interface ActivitySnapshot {
  stage: MonitorStage;
  stage_since_ms: number;
  tools: string[];
  round: number;
  model_calls: number;
  ttft_ms: number | null;
  output_tokens: number;
  output_tokens_per_s: { last_call: number | null; turn: number | null };
  prompt_tokens: number | null;
}

interface OpenCall {
  startedAt: number;
  firstTokenAt: number | null;
  lastTextAt: number;
  /** Tokens of the text counted so far, plus `uncounted` text not tokenized yet. */
  tokens: number;
  uncounted: string;
}

/** Tokens and time the decode rate is taken over. */
interface DecodeWindow {
  tokens: number;
  ms: number;
}

export class TurnActivity {
  private stage: MonitorStage = "starting";
  private stageSince: number;
  /** tool_call_id → tool name, for the calls started and not yet answered. */
  private readonly running = new Map<string, string>();
  private round = 0;
  private modelCalls = 0;
  private call: OpenCall | null = null;
  private ttftMs: number | null = null;
  private lastCallRate: number | null = null;
  private outputTokens = 0;
  /** Sum over the ended calls that streamed long enough to have a rate. */
  private readonly decoded: DecodeWindow = { tokens: 0, ms: 0 };
  private promptTokens: number | null = null;

  constructor(
    private readonly kind: TurnKind,
    startedAt: number,
  ) {
    this.stageSince = startedAt;
  }

  event(type: EventType, data: Record<string, unknown>, at: number): void {
    switch (type) {
      case "progress":
        this.progress(data, at);
        break;
      case "context_usage":
        this.round = num(data.model_round) ?? this.round;
        this.promptTokens = num(data.projected_request_tokens) ?? this.promptTokens;
        this.enter("waiting_for_model", at);
        break;
      case "llm_stream_retry":
        this.call = null;
        if (data.will_retry === true) this.enter("retrying", at);
        break;
      case "llm_output": {
        this.endCall(data.usage, at);
        const toolCalls = Array.isArray(data.tool_calls) ? data.tool_calls.length : 0;
        this.enter(toolCalls > 0 ? "tool_calls" : "finishing", at);
        break;
      }
      case "tool_call":
        this.running.set(String(data.tool_call_id), String(data.tool));
        this.enter("tool_calls", at);
        break;
      case "tool_result":
        this.running.delete(String(data.tool_call_id));
        if (this.running.size === 0) this.enter("preparing", at);
        break;
      case "compaction":
        this.enter(this.kind === "compaction" ? "finishing" : "preparing", at);
        break;
      case "final":
      case "error":
      case "round_usage":
      case "turn_terminal":
        this.enter("finishing", at);
        break;
      default:
      // Deltas, usage echoes and the rest do not change what the turn is doing.
    }
  }

  /** Model text as the call streams it (before the emitter coalesces it into delta events). */
  text(text: string, at: number): void {
    const call = this.call;
    if (!call || text === "") return;
    if (call.firstTokenAt === null) {
      call.firstTokenAt = at;
      // Wall-clock times: a clock stepped back must not make a negative duration.
      this.ttftMs = Math.max(0, at - call.startedAt);
      this.enter("streaming", at);
    }
    call.uncounted += text;
    call.lastTextAt = at;
  }

  snapshot(): ActivitySnapshot {
    const live = this.liveWindow();
    const turn = live
      ? { tokens: this.decoded.tokens + live.tokens, ms: this.decoded.ms + live.ms }
      : this.decoded;
    return {
      stage: this.stage,
      stage_since_ms: this.stageSince,
      tools: [...this.running.values()],
      round: this.round,
      model_calls: this.modelCalls,
      ttft_ms: this.ttftMs,
      output_tokens: this.outputTokens + (this.call?.tokens ?? 0),
      output_tokens_per_s: {
        last_call: this.call?.firstTokenAt != null ? rate(live) : this.lastCallRate,
        turn: rate(turn),
      },
      prompt_tokens: this.promptTokens,
    };
  }

  private progress(data: Record<string, unknown>, at: number): void {
    if (data.stage === "start" || data.stage === "resumed") {
      this.enter(this.kind === "compaction" ? "compacting" : "starting", at);
    } else if (data.stage === "llm_call") {
      this.round = num(data.model_round) ?? this.round;
      this.call = { startedAt: at, firstTokenAt: null, lastTextAt: at, tokens: 0, uncounted: "" };
      this.enter("model_call", at);
    } else if (data.stage === "waiting_for_model") {
      this.enter("parked", at);
    }
  }

  private endCall(usage: unknown, at: number): void {
    const call = this.call;
    if (!call) return;
    this.call = null;
    this.modelCalls++;
    const reported = usage as { output_tokens?: unknown; input_tokens?: unknown } | null;
    const tokens = num(reported?.output_tokens) ?? countOf(call);
    this.outputTokens += tokens;
    this.promptTokens = num(reported?.input_tokens) ?? this.promptTokens;
    const window = call.firstTokenAt === null ? null : decodeWindow(tokens, at - call.firstTokenAt);
    this.lastCallRate = rate(window);
    if (window) {
      this.decoded.tokens += window.tokens;
      this.decoded.ms += window.ms;
    }
  }

  /** The streaming call's decode window so far, if it is long enough to give a rate. */
  private liveWindow(): DecodeWindow | null {
    const call = this.call;
    if (!call || call.firstTokenAt === null) return null;
    return decodeWindow(countOf(call), call.lastTextAt - call.firstTokenAt);
  }

  private enter(stage: MonitorStage, at: number): void {
    if (stage === this.stage) return;
    this.stage = stage;
    this.stageSince = at;
  }
}

/** Tokenizes the call's text received since the last count. */
function countOf(call: OpenCall): number {
  if (call.uncounted !== "") {
    call.tokens += countTextTokens(call.uncounted);
    call.uncounted = "";
  }
  return call.tokens;
}

function decodeWindow(tokens: number, ms: number): DecodeWindow | null {
  return ms >= MIN_SPEED_WINDOW_MS ? { tokens: Math.max(0, tokens - 1), ms } : null;
}

/** Tokens per second, one decimal. */
function rate(window: DecodeWindow | null): number | null {
  if (!window || window.ms <= 0) return null;
  return Math.round((window.tokens / window.ms) * 10_000) / 10;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}
