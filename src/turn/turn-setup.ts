/**
 * Wires one turn's run: its tool set and orchestrator, the context kept within the model's
 * window, the model gate, the failure guard, and the loop over them — every part configured for
 * this turn's model, user and attempt.
 */

import type { TurnEmitter } from "../events/turn-emitter.js";
import type { TurnTrace } from "../obs/genai-spans.js";
import type { Logger } from "../obs/logger.js";
import { PromptPipeline } from "../prompt/prompt-pipeline.js";
import { sessionSystemPrompt } from "../prompt/system-prompt.js";
import type { SessionContext, TurnRecord, TurnUsage } from "../store/port.js";
import { ToolFailureGuard } from "../tools/orchestrator/failure-guard.js";
import { ToolOrchestrator } from "../tools/orchestrator/orchestrator.js";
import { CompactionRun } from "./compaction-run.js";
import type { AbortReason } from "./loop-outcome.js";
import { ModelGate } from "./model-gate.js";
import type { RecordedTurn } from "./recorded-turn.js";
import type { TurnServices } from "./services.js";
import { TurnContext } from "./turn-context.js";
import { TurnLoop, type TurnRunner } from "./turn-loop.js";
import { explainMissingTool, saveToolArtifact } from "./turn-tools.js";

export interface TurnRunParts {
  turn: TurnRecord;
  recorded: RecordedTurn;
  emitter: TurnEmitter;
  abort: { signal: AbortSignal; reason: AbortReason | null };
  log: Logger;
  loaded: SessionContext;
  workspaceRoot: string;
  /** The attempt's `invoke_agent` span: model and tool calls are its children. */
  trace: TurnTrace;
}

export function buildTurnLoop(
  services: TurnServices,
  parts: TurnRunParts,
): { loop: TurnRunner; context: TurnContext } {
  const { config, clients, store } = services;
  const { turn, recorded, emitter, abort, log } = parts;
  const toolSet = services.tools.toolSet(turn.tools);
  const orchestrator = new ToolOrchestrator({
    emitter,
    signal: abort.signal,
    abortKind: () =>
      abort.reason === "cancel" ? "cancel" : abort.reason === "shutdown" ? "hand_back" : null,
    tools: toolSet,
    explainMissing: (name) => explainMissingTool(services.tools, toolSet, name),
    policies: services.toolPolicies,
    settings: {
      ...config.tools,
      resultMaxChars: clients.config(turn.model).toolResultMaxChars ?? config.tools.resultMaxChars,
    },
    context: { workspaceRoot: parts.workspaceRoot, limits: config.tools },
    attempt: turn.attempt,
    recorded,
    turnId: turn.id,
    trace: parts.trace,
    // The turn's fields stay; the lines obey `log.modules.tools`.
    log: log.child({ module: "tools" }),
    saveArtifact: (id, tool, content) => saveToolArtifact(store, turn, { id, tool, content }, log),
  });
  const gate = new ModelGate(services.budget, config.worker.modelWaitMaxMs);
  const context = new TurnContext(parts.loaded.messages, {
    model: turn.model,
    clients,
    gate,
    emitter,
    signal: abort.signal,
    calibration: services.calibration,
    settings: config.context,
    attempt: turn.attempt,
    recorded,
    log,
    trace: parts.trace,
  });
  if (turn.kind === "compaction")
    return { loop: new CompactionRun(context, abort.signal), context };
  const loop = new TurnLoop({
    input: turn.input,
    model: turn.model,
    attempt: turn.attempt,
    maxRounds: config.turn.maxRounds,
    context,
    recorded,
    emitter,
    signal: abort.signal,
    clients,
    gate,
    toolSpecs: toolSet.specs,
    pipeline: new PromptPipeline(clients.config(turn.model).toolProtocol),
    systemPrompt: sessionSystemPrompt(
      { historyLength: parts.loaded.historyLength, hasSnapshot: parts.loaded.snapshot !== null },
      config.turn.systemPrompt,
    ),
    orchestrator,
    guard: new ToolFailureGuard(
      config.tools.failureGuardThreshold,
      config.tools.maxInvalidCallRounds,
    ),
    trace: parts.trace,
  });
  return { loop, context };
}

/** The turn's usage: its model calls, plus the summary calls of its compactions (consumption). */
export function turnUsage(loop: TurnRunner, context: TurnContext): TurnUsage {
  const summary = context.summaryUsage;
  return {
    input_tokens: loop.usage.input_tokens + summary.input_tokens,
    output_tokens: loop.usage.output_tokens + summary.output_tokens,
    total_tokens: loop.usage.total_tokens + summary.total_tokens,
    context_tokens: loop.usage.context_tokens,
    context_window_tokens: context.budget.windowTokens,
    model_calls: loop.usage.model_calls + summary.calls,
    compaction_tokens: summary.total_tokens,
  };
}
