/**
 * Runs the tool calls of one model round, in call order, and turns each result into the
 * observation the model reads next.
 *
 * Invariants:
 * - every call of the round is announced (`tool_call`) and durably appended before any runs;
 * - every call gets exactly one `tool_result`, also when its arguments are not JSON, fail
 *   validation, or name a tool this turn may not use: those are `ok: false` results the model
 *   can correct, never a failed turn;
 * - a call already recorded by an earlier attempt is not run again (tools run at least once,
 *   at most once per recorded result);
 * - the observation is a pure function of the recorded result, so a resumed turn shows the model
 *   exactly what the first attempt showed it.
 */
import type { ContextMessage, ToolCall } from "../context/message.js";
import { TOOL_RESULT_VERSION } from "../events/schema-version.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { Tool, ToolLimits, ToolOutput } from "../tools/tool.js";
import type { RecordedToolResult, RecordedTurn } from "./recorded-turn.js";

export interface ToolStepInput {
  emitter: TurnEmitter;
  signal: AbortSignal;
  round: number;
  calls: ToolCall[];
  /** The tools this turn may use, by name. */
  tools: ReadonlyMap<string, Tool>;
  workspaceRoot: string;
  limits: ToolLimits;
  resultMaxChars: number;
  recorded: RecordedTurn;
}

export async function runToolStep(input: ToolStepInput): Promise<ContextMessage[]> {
  const { emitter, round, calls } = input;
  const parsed = calls.map((call) => ({ call, args: parseArguments(call.arguments) }));
  for (const { call, args } of parsed) {
    emitter.emit("tool_call", `r${round}.tool_call.${call.id}`, {
      model_round: round,
      tool: call.name,
      tool_call_id: call.id,
      args: args.ok ? args.value : call.arguments,
    });
  }
  await emitter.flush();

  const observations: ContextMessage[] = [];
  for (const { call, args } of parsed) {
    if (input.signal.aborted) break;
    const recorded = input.recorded.toolResult(round, call.id);
    let observation: { text: string; truncated: boolean };
    if (recorded) {
      observation = observe(recorded, input.resultMaxChars);
    } else {
      const started = performance.now();
      const output = args.ok
        ? await execute(input, call.name, args.value)
        : failure(`arguments are not valid JSON: ${args.error}`);
      if (input.signal.aborted) break;
      const result = {
        ok: output.ok,
        data: output.data,
        ...(output.error ? { error: output.error } : {}),
      };
      observation = observe(result, input.resultMaxChars);
      emitter.emit("tool_result", `r${round}.tool_result.${call.id}`, {
        model_round: round,
        tool: call.name,
        tool_call_id: call.id,
        result_v: TOOL_RESULT_VERSION,
        ...result,
        meta: {
          duration_ms: Math.round(performance.now() - started),
          truncated: output.truncated === true || observation.truncated,
          output_chars: observation.text.length,
          ...(output.exit_code !== undefined ? { exit_code: output.exit_code } : {}),
        },
      });
    }
    observations.push({ role: "tool", tool_call_id: call.id, content: observation.text });
  }
  return observations;
}

async function execute(input: ToolStepInput, name: string, args: unknown): Promise<ToolOutput> {
  const tool = input.tools.get(name);
  if (!tool) {
    const known = [...input.tools.keys()].join(", ") || "none";
    return failure(`unknown tool "${name}"; this turn can use: ${known}`);
  }
  const valid = tool.input.safeParse(args ?? {});
  if (!valid.success) {
    const issues = valid.error.issues.map(
      (i) => `${i.path.join(".") || "(arguments)"}: ${i.message}`,
    );
    return failure(`invalid arguments for ${name}: ${issues.join("; ")}`);
  }
  return tool.run(valid.data, {
    workspaceRoot: input.workspaceRoot,
    signal: input.signal,
    limits: input.limits,
  });
}

function failure(error: string): ToolOutput {
  return { ok: false, data: null, error };
}

type ParsedArguments = { ok: true; value: unknown } | { ok: false; error: string };

function parseArguments(raw: string): ParsedArguments {
  if (raw.trim() === "") return { ok: true, value: {} };
  try {
    return { ok: true, value: JSON.parse(raw) };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

const TRUNCATION_MARKER = (omitted: number) => `\n…[${omitted} chars omitted]…\n`;

/** The model's view of a result: compact JSON, cut to head + tail when too long. */
export function observe(
  result: RecordedToolResult,
  maxChars: number,
): { text: string; truncated: boolean } {
  const text = JSON.stringify(result);
  if (text.length <= maxChars) return { text, truncated: false };
  const half = Math.floor(maxChars / 2);
  const omitted = text.length - 2 * half;
  return {
    text: text.slice(0, half) + TRUNCATION_MARKER(omitted) + text.slice(text.length - half),
    truncated: true,
  };
}
