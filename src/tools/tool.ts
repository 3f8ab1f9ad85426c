/**
 * What a built-in tool is: a name, a description, a zod input schema (which also yields the JSON
 * schema the model sees), its execution policy, and a `run` that works inside one user's workspace.
 *
 * Invariants:
 * - `run` never throws for a problem the model caused (bad path, missing file, non-zero exit):
 *   it returns `{ ok: false, error }` so the model can react; it throws only on a bug;
 * - `run` stops promptly when `ctx.signal` aborts (cancel, timeout, shutdown);
 * - nothing outside `ctx.workspaceRoot` is read, written or executed in.
 */
import type { z } from "zod";

/**
 * - `read_only`: no effect outside its result; runs beside other read-only calls;
 * - `mutating`: changes the workspace or the world; runs alone;
 * - `terminal`: ends the model round (e.g. `final_response`); runs after every other call.
 */
export const TOOL_KINDS = ["read_only", "mutating", "terminal"] as const;
export type ToolKind = (typeof TOOL_KINDS)[number];

export interface ToolLimits {
  commandTimeoutMs: number;
  maxCommandTimeoutMs: number;
  commandOutputMaxBytes: number;
  readFileMaxBytes: number;
  webFetchTimeoutMs: number;
  webFetchMaxBytes: number;
  /** Lets `web_fetch` reach loopback, private, link-local and other non-public addresses. */
  webFetchAllowPrivate: boolean;
}

export type OutputStream = "stdout" | "stderr";

export interface ToolContext {
  /** Absolute, already-created folder of the user; the tool's whole world. */
  workspaceRoot: string;
  signal: AbortSignal;
  limits: ToolLimits;
  /** Live output for clients (`tool_output_delta`); never part of the model's view. */
  onOutput?(stream: OutputStream, text: string): void;
}

export interface ToolOutput {
  ok: boolean;
  /** JSON-serialisable result for the model. */
  data: unknown;
  error?: string;
  exit_code?: number;
  /** True when the tool itself cut its output (command output cap, file size cap). */
  truncated?: boolean;
  /**
   * The failure may not recur if the call is made again (network error, 5xx, a source that
   * restarted). Only such failures of idempotent tools are retried, and only they count
   * against a source's circuit breaker.
   */
  transient?: boolean;
  /**
   * The failure is a remote party's (a web site's 5xx), not the tool source's: a transient one
   * is retried, but it does not count against the source's circuit breaker.
   */
  remote?: boolean;
}

/** How the orchestrator runs a tool's calls. */
export interface ToolPolicy {
  /** Same arguments, same effect: a transient failure may be retried. */
  idempotent: boolean;
  /** Bound of one call when the call names none; unset → the farm's default (120 s). */
  timeoutMs?: number;
}

export interface Tool<Args = unknown> {
  name: string;
  description: string;
  /** Bumped when the input schema or the result shape changes. */
  version: string;
  kind: ToolKind;
  /**
   * The breaker and bulkhead this tool shares with its siblings (`fs`, `exec`, `web`, `control`),
   * so a failing file system does not trip the web tools.
   */
  family: string;
  policy: ToolPolicy;
  input: z.ZodType<Args>;
  run(args: Args, ctx: ToolContext): Promise<ToolOutput>;
}
