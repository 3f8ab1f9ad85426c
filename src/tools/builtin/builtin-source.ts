/**
 * The built-in tools as a tool source: always available, their JSON schemas generated from
 * their zod input schemas, their breaker keys by family (`builtin:fs`, `builtin:exec`, …).
 *
 * Invariant: the JSON schema describes the tool's *input* side, so fields with defaults are
 * optional for the model; validation applies the same zod schema (and fills the defaults).
 */
import { z } from "zod";
import type { SourceHealth, ToolEntry, ToolSource, Validation } from "../source.js";
import type { Tool } from "../tool.js";

export const BUILTIN_SOURCE_ID = "builtin";

export function builtinEntry(tool: Tool): ToolEntry {
  const { $schema: _dialect, ...inputSchema } = z.toJSONSchema(tool.input, {
    target: "draft-7",
    io: "input",
  });
  return {
    name: tool.name,
    displayName: tool.name,
    description: tool.description,
    version: tool.version,
    kind: tool.kind,
    inputSchema,
    source: BUILTIN_SOURCE_ID,
    breakerKey: `${BUILTIN_SOURCE_ID}:${tool.family}`,
    idempotent: tool.policy.idempotent,
    parallelSafe: tool.kind === "read_only",
    ...(tool.policy.timeoutMs !== undefined ? { timeoutMs: tool.policy.timeoutMs } : {}),
    validate: (args) => validateWith(tool, args),
    call: (args, ctx) => tool.run(args, ctx),
  };
}

function validateWith(tool: Tool, args: unknown): Validation {
  const parsed = tool.input.safeParse(args ?? {});
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => `${i.path.join(".") || "(arguments)"}: ${i.message}`),
  };
}

export class BuiltinToolSource implements ToolSource {
  readonly id = BUILTIN_SOURCE_ID;
  private readonly entries: readonly ToolEntry[];
  private readonly healthy: SourceHealth = { available: true, checkedAt: Date.now() };

  constructor(tools: readonly Tool[]) {
    this.entries = tools.map(builtinEntry);
  }

  tools(): readonly ToolEntry[] {
    return this.entries;
  }

  health(): SourceHealth {
    return this.healthy;
  }

  async start(): Promise<void> {}

  async checkHealth(): Promise<SourceHealth> {
    return this.healthy;
  }

  async refresh(): Promise<void> {}

  async close(): Promise<void> {}

  onChange(): () => void {
    return () => undefined;
  }
}
