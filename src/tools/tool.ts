/**
 * What a built-in tool is: a name, a description, a zod input schema (which also yields the JSON
 * schema the model sees) and a `run` that works inside one user's workspace.
 *
 * Invariants:
 * - `run` never throws for a problem the model caused (bad path, missing file, non-zero exit):
 *   it returns `{ ok: false, error }` so the model can react; it throws only on a bug;
 * - `run` stops promptly when `ctx.signal` aborts (cancel, timeout, shutdown);
 * - nothing outside `ctx.workspaceRoot` is read, written or executed in.
 */
import type { z } from "zod";

export type ToolKind = "read_only" | "mutating";

export interface ToolLimits {
  commandTimeoutMs: number;
  maxCommandTimeoutMs: number;
  commandOutputMaxBytes: number;
  readFileMaxBytes: number;
}

export interface ToolContext {
  /** Absolute, already-created folder of the user; the tool's whole world. */
  workspaceRoot: string;
  signal: AbortSignal;
  limits: ToolLimits;
}

export interface ToolOutput {
  ok: boolean;
  /** JSON-serialisable result for the model. */
  data: unknown;
  error?: string;
  exit_code?: number;
  /** True when the tool itself cut its output (command output cap, file size cap). */
  truncated?: boolean;
}

export interface Tool<Args = unknown> {
  name: string;
  description: string;
  kind: ToolKind;
  input: z.ZodType<Args>;
  run(args: Args, ctx: ToolContext): Promise<ToolOutput>;
}
