/**
 * The registry's view of a tool, whatever it comes from (built-in, an MCP server, later A2A),
 * and the contract of a tool source.
 *
 * Invariants:
 * - `name` is what the model sees and calls: `[A-Za-z0-9_-]{1,64}`, unique across sources;
 * - `validate` runs before every `call`; `call` gets only validated arguments;
 * - `call` never throws for a failure of the tool or its source: it returns `ok: false`
 *   (with `transient` set when trying again may help); it throws only on a bug;
 * - a source never throws from `start`, `checkHealth` or `refresh`: failures show in `health()`,
 *   and an unavailable source's tools are withheld from prompts until it recovers.
 */
import type { ToolContext, ToolKind, ToolOutput } from "./tool.js";

export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export type Validation = { ok: true; value: unknown } | { ok: false; issues: string[] };

export interface ToolEntry {
  /** Model-visible name. */
  name: string;
  /** Name for people: the built-in's name, or `server@tool` for MCP. */
  displayName: string;
  description: string;
  version: string;
  kind: ToolKind;
  /** JSON schema (draft-7 style object) of the arguments, as shown to the model. */
  inputSchema: Record<string, unknown>;
  /** The source's id: `builtin`, `mcp:<server>`. */
  source: string;
  /** Circuit breaker and bulkhead key: `builtin:<family>`, `mcp:<server>`. */
  breakerKey: string;
  idempotent: boolean;
  /** May run beside other calls of the round (read/write lock: shared when true). */
  parallelSafe: boolean;
  /** The tool's own default bound for one call; unset → the farm's default. */
  timeoutMs?: number;
  validate(args: unknown): Validation;
  call(args: unknown, ctx: ToolContext): Promise<ToolOutput>;
}

export interface SourceHealth {
  available: boolean;
  /** Why it is unavailable (no secrets: URLs without credentials, no env values). */
  error?: string;
  /** Epoch ms of the last check or state change. */
  checkedAt: number;
}

export interface ToolSource {
  /** `builtin`, `mcp:<server>`. */
  readonly id: string;
  /** The tools it offers now; may change after `refresh` or a server's notification. */
  tools(): readonly ToolEntry[];
  health(): SourceHealth;
  /** Connects and lists its tools. */
  start(): Promise<void>;
  /** An active probe (e.g. MCP ping); updates and returns `health()`. */
  checkHealth(): Promise<SourceHealth>;
  /** Lists the tools again now, bypassing any cache. */
  refresh(): Promise<void>;
  close(): Promise<void>;
  /** Calls `listener` whenever the tools or the health change; returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}
