/**
 * In-process tools for the orchestrator tests: real `Tool`s with controllable timing and
 * failures, registered through the same BuiltinToolSource path as the farm's own tools.
 */
import { z } from "zod";
import { builtinEntry } from "../../../src/tools/builtin/builtin-source.js";
import type { ToolEntry } from "../../../src/tools/source.js";
import type { Tool, ToolKind, ToolOutput } from "../../../src/tools/tool.js";

export interface ProbeOptions {
  kind?: ToolKind;
  idempotent?: boolean;
  family?: string;
  /** Waits this long (abortably) before answering. */
  delayMs?: number;
  /** Answers for the first calls, in order; later calls answer ok. */
  script?: ToolOutput[];
  timeoutMs?: number;
}

export interface Probe {
  entry: ToolEntry;
  /** Every call as [start, end] (performance.now()) and whether it was aborted. */
  calls: { start: number; end: number; aborted: boolean }[];
}

export function probe(name: string, options: ProbeOptions = {}): Probe {
  const calls: Probe["calls"] = [];
  const script = [...(options.script ?? [])];
  const tool: Tool<{ value?: string; timeout_ms?: number }> = {
    name,
    description: `probe ${name}`,
    version: "1",
    kind: options.kind ?? "read_only",
    family: options.family ?? name,
    policy: {
      idempotent: options.idempotent ?? true,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    },
    input: z.object({ value: z.string().optional(), timeout_ms: z.number().optional() }),
    async run(args, ctx) {
      const call = { start: performance.now(), end: 0, aborted: false };
      calls.push(call);
      try {
        await abortableSleep(options.delayMs ?? 0, ctx.signal);
      } catch {
        call.aborted = true;
        call.end = performance.now();
        return { ok: false, data: null, error: "aborted" };
      }
      call.end = performance.now();
      return script.shift() ?? { ok: true, data: { echo: args.value ?? null, name } };
    },
  };
  return { entry: builtinEntry(tool as Tool), calls };
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error("aborted"));
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new Error("aborted"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export const TRANSIENT: ToolOutput = {
  ok: false,
  data: null,
  error: "503 upstream",
  transient: true,
};
