/**
 * Shared fixtures for the tool tests: a real temp workspace per test and a context around it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { ensureWorkspace } from "../../../src/tools/builtin/workspace.js";
import type { Tool, ToolContext, ToolLimits, ToolOutput } from "../../../src/tools/tool.js";

export const TEST_LIMITS: ToolLimits = {
  commandTimeoutMs: 10_000,
  maxCommandTimeoutMs: 20_000,
  commandOutputMaxBytes: 64 * 1024,
  readFileMaxBytes: 256 * 1024,
  webFetchTimeoutMs: 5_000,
  webFetchMaxBytes: 256 * 1024,
  webFetchAllowPrivate: false,
};

export interface TempWorkspace {
  /** The temp folder that holds `workspaces/` (and anything "outside" a test needs). */
  dataDir: string;
  root: string;
  cleanup(): Promise<void>;
}

export async function makeWorkspace(userId = "u1"): Promise<TempWorkspace> {
  const dataDir = await mkdtemp(path.join(os.tmpdir(), "wunder-tools-"));
  const root = await ensureWorkspace(dataDir, userId);
  return { dataDir, root, cleanup: () => rm(dataDir, { recursive: true, force: true }) };
}

export function contextFor(
  root: string,
  options: { signal?: AbortSignal; limits?: Partial<ToolLimits> } = {},
): ToolContext {
  return {
    workspaceRoot: root,
    signal: options.signal ?? new AbortController().signal,
    limits: { ...TEST_LIMITS, ...options.limits },
  };
}

/** Validates `args` with the tool's own schema, as the turn loop does, then runs the tool. */
export function runTool<Args>(
  tool: Tool<Args>,
  args: unknown,
  ctx: ToolContext,
): Promise<ToolOutput> {
  return tool.run(tool.input.parse(args), ctx);
}
