/**
 * Runs the tool calls of one model round (wunder's ToolOrchestrator, Codex's parallel runtime).
 *
 * Invariants:
 * - every call of the round is announced (`tool_call`) and durably appended before any runs;
 * - every call gets exactly one `tool_result`, also when its arguments are not JSON, fail
 *   validation, or name a tool this turn may not use: those are `ok: false` results the model
 *   can correct, never a failed turn;
 * - read-only (parallel-safe) calls share the round lock, others hold it alone, at most
 *   `parallelism` at once, granted in call order (round-lock.ts); a terminal call runs after
 *   every other call of the round; results go back to the model in call order;
 * - a call already recorded by an earlier attempt is not run again, and the model is shown
 *   exactly what it was shown then (tool-result.ts);
 * - when the turn is cancelled, running calls are aborted and every unfinished call records an
 *   aborted result; when the turn is handed back (shutdown), calls that had not started and
 *   idempotent ones record nothing (the next attempt runs them), while a mutating call cut off
 *   mid-way records "interrupted" so it never runs twice unseen;
 * - every call this attempt settles (not one replayed from the record) is one `execute_tool`
 *   span under the attempt's span.
 */
import { setMaxListeners } from "node:events";
import type { ContextMessage, ToolCall } from "../../context/message.js";
import { TOOL_RESULT_VERSION } from "../../events/schema-version.js";
import type { TurnEmitter } from "../../events/turn-emitter.js";
import { parseToolArguments } from "../../llm/tool-call-repair.js";
import type { TurnTrace } from "../../obs/genai-spans.js";
import type { Logger } from "../../obs/logger.js";
import type { RecordedTurn } from "../../turn/recorded-turn.js";
import type { ToolSet } from "../registry.js";
import type { ToolEntry } from "../source.js";
import type { ToolContext, ToolOutput } from "../tool.js";
import type { GuardedOutcome, ToolCallPolicies } from "./call-policy.js";
import { CallTrace } from "./call-trace.js";
import type { GuardedCall } from "./failure-guard.js";
import { OutputDeltas } from "./output-deltas.js";
import { RoundLock } from "./round-lock.js";
import { toolMetrics } from "./tool-metrics.js";
import {
  type ArtifactRef,
  artifactIdFor,
  observationOf,
  observe,
  resultText,
  type ToolResultMeta,
  type ToolResultRecord,
} from "./tool-result.js";

/** The tool's own handling of a `timeout_ms` it was given wins; the round's bound is a backstop. */
const OWN_TIMEOUT_GRACE_MS = 1_000;
const MIN_CALL_TIMEOUT_MS = 1_000;
const INTERRUPTED_ERROR =
  "interrupted: the worker shut down while this call ran, so it may have partly run; " +
  "check its effects before running it again";

export interface OrchestratorSettings {
  parallelism: number;
  callTimeoutMs: number;
  maxCallTimeoutMs: number;
  resultMaxChars: number;
}

export interface TurnTools {
  emitter: TurnEmitter;
  signal: AbortSignal;
  /**
   * Why the turn's signal aborted: a `cancel` ends the turn (every unfinished call is recorded
   * as aborted); a `hand_back` (shutdown) passes it to another worker (see `abortedRecord`).
   */
  abortKind(): "cancel" | "hand_back" | null;
  tools: ToolSet;
  /** Why a tool outside `tools` cannot be called (unknown, not allowed, unavailable). */
  explainMissing(name: string): { error: string; invalid: boolean };
  policies: ToolCallPolicies;
  settings: OrchestratorSettings;
  context: Omit<ToolContext, "signal" | "onOutput">;
  attempt: number;
  recorded: RecordedTurn;
  turnId: string;
  /** The turn's log: each call it runs is a line with `tool` and `tool_call_id` (debug when ok). */
  log: Logger;
  /** The turn attempt's trace: each call it settles is a span in it. */
  trace?: TurnTrace;
  /**
   * Stores a result too long for the model (null when it could not be saved: the model still
   * gets the cut view). The id comes from `artifactIdFor`, so a redone call reuses it.
   */
  saveArtifact(artifactId: string, tool: string, content: string): Promise<ArtifactRef | null>;
}

export interface RoundOutcome {
  /** One `tool` message per call, in call order. */
  observations: ContextMessage[];
  guard: GuardedCall[];
  /** Set when a terminal call succeeded: the turn's answer. */
  final: { answer: string; tool: string } | null;
}

interface Planned {
  call: ToolCall;
  args: ReturnType<typeof parseToolArguments>;
  entry: ToolEntry | undefined;
}

interface Settled {
  record: ToolResultRecord;
  observation: string;
  invalid: boolean;
}

export class ToolOrchestrator {
  constructor(private readonly turn: TurnTools) {}

  async runRound(round: number, calls: readonly ToolCall[]): Promise<RoundOutcome> {
    const { emitter } = this.turn;
    const planned = calls.map((call) => this.plan(call));
    for (const { call, args, entry } of planned) {
      emitter.emit("tool_call", `r${round}.tool_call.${call.id}`, {
        model_round: round,
        tool: call.name,
        ...(entry && entry.displayName !== call.name ? { display_name: entry.displayName } : {}),
        tool_call_id: call.id,
        args: args.ok ? args.value : call.arguments,
        ...(args.ok && args.repaired ? { repair: args.repaired } : {}),
      });
    }
    await emitter.flush();

    const scope = roundScope(this.turn.signal, this.turn.settings.parallelism);
    try {
      const terminalAt = planned.findIndex((p) => p.entry?.kind === "terminal");
      const results = await Promise.all(
        planned.map((p) =>
          p.entry?.kind === "terminal" ? Promise.resolve(null) : this.settle(round, p, scope),
        ),
      );
      for (const [i, p] of planned.entries()) {
        if (p.entry?.kind !== "terminal") continue;
        results[i] =
          i === terminalAt
            ? await this.settle(round, p, scope)
            : await this.settleWithout(round, p, {
                ok: false,
                data: null,
                error: `only the first ${planned[terminalAt]?.call.name} call of a round runs`,
              });
      }
      return this.outcome(planned, results, terminalAt);
    } finally {
      scope.dispose();
    }
  }

  private outcome(
    planned: Planned[],
    results: (Settled | null)[],
    terminalAt: number,
  ): RoundOutcome {
    const observations: ContextMessage[] = [];
    const guard: GuardedCall[] = [];
    for (const [i, p] of planned.entries()) {
      const result = results[i];
      if (!result) continue;
      observations.push({ role: "tool", tool_call_id: p.call.id, content: result.observation });
      guard.push({
        tool: p.call.name,
        args: p.call.arguments,
        ok: result.record.ok,
        ...(result.record.error !== undefined ? { error: result.record.error } : {}),
        invalid: result.invalid,
        aborted: result.record.meta?.aborted === true,
      });
    }
    const terminal = terminalAt >= 0 ? results[terminalAt] : null;
    const answer = (terminal?.record.data as { answer?: unknown } | null)?.answer;
    const final =
      terminal?.record.ok && typeof answer === "string"
        ? { answer, tool: planned[terminalAt]?.call.name ?? "" }
        : null;
    return { observations, guard, final };
  }

  private plan(call: ToolCall): Planned {
    return {
      call,
      args: parseToolArguments(call.arguments),
      entry: this.turn.tools.byName.get(call.name),
    };
  }

  /** Runs (or replays) one call and records its result; null when aborted without a record. */
  private async settle(round: number, p: Planned, scope: RoundScope): Promise<Settled | null> {
    const recorded = this.turn.recorded.toolResult(round, p.call.id);
    if (recorded) {
      return {
        record: recorded,
        observation: observationOf(recorded, this.turn.settings.resultMaxChars),
        invalid: recorded.invalid === true,
      };
    }
    const trace = CallTrace.start(
      this.turn.trace,
      this.turn.log,
      round,
      p.call,
      p.entry?.source ?? null,
    );
    try {
      const settled = await this.settleNew(round, p, scope);
      trace.settled(settled);
      return settled;
    } catch (err) {
      trace.threw();
      throw err;
    }
  }

  /** Runs a call no earlier attempt recorded, or records why it cannot run. */
  private async settleNew(round: number, p: Planned, scope: RoundScope): Promise<Settled | null> {
    if (!p.args.ok) {
      return this.settleWithout(
        round,
        p,
        { ok: false, data: null, error: `arguments are not valid JSON: ${p.args.error}` },
        true,
      );
    }
    if (!p.entry) {
      const missing = this.turn.explainMissing(p.call.name);
      return this.settleWithout(
        round,
        p,
        { ok: false, data: null, error: missing.error },
        missing.invalid,
      );
    }
    const valid = p.entry.validate(p.args.value);
    if (!valid.ok) {
      const error = `invalid arguments for ${p.call.name}: ${valid.issues.join("; ")}`;
      return this.settleWithout(round, p, { ok: false, data: null, error }, true);
    }
    return this.execute(round, p, p.entry, valid.value, scope);
  }

  private async execute(
    round: number,
    p: Planned,
    entry: ToolEntry,
    args: unknown,
    { lock, signal }: RoundScope,
  ): Promise<Settled | null> {
    let started = performance.now();
    const mode = entry.parallelSafe ? "shared" : "exclusive";
    const timeoutMs = this.timeoutOf(entry, args);
    const deltas = new OutputDeltas((index, stream, text) =>
      this.turn.emitter.emit(
        "tool_output_delta",
        `r${round}.a${this.turn.attempt}.out.${p.call.id}.${index}`,
        { model_round: round, tool: p.call.name, tool_call_id: p.call.id, stream, text },
      ),
    );
    let outcome: GuardedOutcome;
    let release: (() => void) | null = null;
    try {
      release = await lock.acquire(mode, signal);
      started = performance.now();
      outcome = await this.turn.policies.run(entry, timeoutMs, signal, (trySignal) =>
        entry.call(args, { ...this.turn.context, signal: trySignal, onOutput: deltas.write }),
      );
    } catch (err) {
      if (!signal.aborted) throw err;
      outcome = abortedBeforeStart();
    } finally {
      release?.();
      deltas.close();
    }
    toolMetrics.observe(entry, outcome, (performance.now() - started) / 1000);
    if (outcome.aborted) {
      const error = this.abortedRecord(entry, outcome.attempts > 0);
      if (error === null) return null;
      outcome.output = { ok: false, data: null, error };
    }
    const meta: Omit<ToolResultMeta, "output_chars" | "original_chars" | "truncated"> = {
      duration_ms: Math.round(performance.now() - started),
      attempts: outcome.attempts,
      ...(outcome.output.exit_code !== undefined ? { exit_code: outcome.output.exit_code } : {}),
      ...(outcome.timedOut ? { timed_out: true } : {}),
      ...(outcome.aborted ? { aborted: true } : {}),
      ...(outcome.breaker !== "closed" ? { breaker: outcome.breaker } : {}),
      policy: { timeout_ms: timeoutMs, idempotent: entry.idempotent, lock: mode },
    };
    return this.record(round, p, outcome.output, meta, false);
  }

  /** A result for a call that never reached a tool. */
  private settleWithout(
    round: number,
    p: Planned,
    output: ToolOutput,
    invalid = false,
  ): Promise<Settled | null> {
    if (this.turn.signal.aborted && this.abortedRecord(p.entry, false) === null) {
      return Promise.resolve(null);
    }
    return this.record(round, p, output, { duration_ms: 0, attempts: 0 }, invalid);
  }

  private async record(
    round: number,
    p: Planned,
    output: ToolOutput,
    partialMeta: Omit<ToolResultMeta, "output_chars" | "original_chars" | "truncated">,
    invalid: boolean,
  ): Promise<Settled> {
    const { settings } = this.turn;
    const full = resultText(output);
    let artifact: ArtifactRef | null = null;
    let observation = observe(full, settings.resultMaxChars);
    if (observation.truncated) {
      const artifactId = artifactIdFor(this.turn.turnId, round, p.call.id);
      artifact = await this.turn.saveArtifact(artifactId, p.call.name, full);
      observation = observe(full, settings.resultMaxChars, artifact?.id);
    }
    const meta: ToolResultMeta = {
      ...partialMeta,
      truncated: output.truncated === true || observation.truncated,
      output_chars: observation.text.length,
      original_chars: observation.originalChars,
    };
    const record: ToolResultRecord = {
      ok: output.ok,
      data: observation.truncated ? null : output.data,
      ...(output.error !== undefined ? { error: output.error } : {}),
      ...(observation.truncated ? { preview: observation.text } : {}),
      ...(artifact ? { artifact } : {}),
      meta,
    };
    this.turn.emitter.emit("tool_result", `r${round}.tool_result.${p.call.id}`, {
      model_round: round,
      tool: p.call.name,
      tool_call_id: p.call.id,
      result_v: TOOL_RESULT_VERSION,
      ...record,
      ...(invalid ? { invalid: true } : {}),
    });
    return { record, observation: observation.text, invalid };
  }

  /**
   * The error an aborted call is recorded with, or null to record nothing. On a hand-back a call
   * that never started, or an idempotent one, is simply run again by the next attempt; a
   * mutating call cut off mid-way may have had part of its effect, so the model is told instead
   * of having it run twice behind its back.
   */
  private abortedRecord(entry: ToolEntry | undefined, started: boolean): string | null {
    const kind = this.turn.abortKind();
    if (kind === "cancel") return "aborted";
    if (kind === "hand_back" && started && entry && !entry.idempotent) return INTERRUPTED_ERROR;
    return null;
  }

  /** The call's own `timeout_ms` argument (clamped), else the tool's default, else the farm's. */
  private timeoutOf(entry: ToolEntry, args: unknown): number {
    const { callTimeoutMs, maxCallTimeoutMs } = this.turn.settings;
    const own = (args as { timeout_ms?: unknown } | null)?.timeout_ms;
    if (typeof own === "number" && Number.isFinite(own)) {
      const clamped = Math.min(Math.max(own, MIN_CALL_TIMEOUT_MS), maxCallTimeoutMs);
      return clamped + OWN_TIMEOUT_GRACE_MS;
    }
    return entry.timeoutMs ?? callTimeoutMs;
  }
}

/** What the calls of one round share: the round lock, and one signal that follows the turn's. */
interface RoundScope {
  lock: RoundLock;
  signal: AbortSignal;
  dispose(): void;
}

/**
 * Every call of a round listens to the round's signal (lock wait, bulkhead, breaker, timeout),
 * so it may carry many listeners; the turn's own signal gets just one per round.
 */
function roundScope(turnSignal: AbortSignal, parallelism: number): RoundScope {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const forward = () => controller.abort(turnSignal.reason);
  if (turnSignal.aborted) forward();
  else turnSignal.addEventListener("abort", forward, { once: true });
  return {
    lock: new RoundLock(parallelism),
    signal: controller.signal,
    dispose: () => turnSignal.removeEventListener("abort", forward),
  };
}

function abortedBeforeStart(): GuardedOutcome {
  return {
    output: { ok: false, data: null, error: "aborted" },
    attempts: 0,
    timedOut: false,
    aborted: true,
    breaker: "closed",
  };
}
