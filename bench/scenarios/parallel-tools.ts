/**
 * `parallel-tools`: one model round of 8 read-only calls of 100 ms each, with the round's
 * parallelism at 4 (the default) and at 1 (sequential: the baseline), alternating, medians.
 * Target: ≈ 2 × 100 ms vs ≈ 800 ms. Run twice: with an in-process tool (the orchestrator's own
 * overhead) and with a real MCP server over stdio (`trigger-long-running-operation` of
 * server-everything, 0.1 s), which adds the protocol and the server.
 */
import { ToolCallPolicies } from "../../src/tools/orchestrator/call-policy.js";
import type { ToolEntry } from "../../src/tools/source.js";
import { median, round } from "../stats.js";
import { benchTool, calls, TOOLS_DEFAULTS, ToolBench } from "../tool-fixtures.js";

export interface ParallelToolsOptions {
  calls: number;
  delayMs: number;
  repeats: number;
}

export async function parallelTools(
  options: ParallelToolsOptions,
  mcpTool: () => Promise<{ entry: ToolEntry; args: string; close(): Promise<void> }>,
  log: (line: string) => void,
) {
  const bench = await ToolBench.open();
  try {
    const inProcess = benchTool("sleepy", { delayMs: options.delayMs });
    const results: Record<string, unknown> = {
      in_process: await measure(bench, inProcess, "{}", options),
    };
    log(`parallel-tools in-process: ${JSON.stringify(results.in_process)}`);
    const mcp = await mcpTool();
    try {
      results.mcp_stdio = await measure(bench, mcp.entry, mcp.args, options);
      log(`parallel-tools mcp: ${JSON.stringify(results.mcp_stdio)}`);
    } finally {
      await mcp.close();
    }
    return { ...results, settings: options };
  } finally {
    await bench.close();
  }
}

async function measure(
  bench: ToolBench,
  tool: ToolEntry,
  args: string,
  options: ParallelToolsOptions,
) {
  const policies = new ToolCallPolicies(TOOLS_DEFAULTS);
  const round4: number[] = [];
  const round1: number[] = [];
  const roundCalls = calls(tool.name, options.calls).map((c) => ({ ...c, arguments: args }));
  // One warm-up of each: the first call of a source pays for connections and JIT.
  await bench.round([tool], roundCalls, policies, { parallelism: 4 });
  for (let r = 0; r < options.repeats; r++) {
    const parallel = await bench.round([tool], roundCalls, policies, { parallelism: 4 });
    const sequential = await bench.round([tool], roundCalls, policies, { parallelism: 1 });
    for (const { outcome } of [parallel, sequential]) {
      if (outcome.guard.some((c) => !c.ok)) throw new Error("parallel-tools: a call failed");
    }
    round4.push(parallel.ms);
    round1.push(sequential.ms);
  }
  const parallelMs = median(round4);
  const sequentialMs = median(round1);
  return {
    parallelism_4_round_ms: round(parallelMs),
    sequential_round_ms: round(sequentialMs),
    speedup: round(sequentialMs / parallelMs, 2),
    ideal_parallel_ms: Math.ceil(options.calls / 4) * options.delayMs,
    ideal_sequential_ms: options.calls * options.delayMs,
  };
}
