/**
 * What the tool benchmarks share: the orchestrator as a worker runs it (real TurnEmitter on Redis
 * under a private prefix, a SQLite store for artifacts), a fresh turn per round, and in-process
 * tools with a set latency and failure rate.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { z } from "zod";
import { ConfigSchema, type FarmConfig } from "../src/config/schema.js";
import type { ToolCall } from "../src/context/message.js";
import { EventAppender } from "../src/events/appender.js";
import { TurnEmitter } from "../src/events/turn-emitter.js";
import { createLogger } from "../src/obs/logger.js";
import { type RedisKeys, redisKeys } from "../src/redis/keys.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { builtinEntry } from "../src/tools/builtin/builtin-source.js";
import { McpServerConfigSchema } from "../src/tools/mcp/mcp-config.js";
import { addMcpSources } from "../src/tools/mcp/mcp-sources.js";
import type { ToolCallPolicies } from "../src/tools/orchestrator/call-policy.js";
import { type RoundOutcome, ToolOrchestrator } from "../src/tools/orchestrator/orchestrator.js";
import { ToolRegistry } from "../src/tools/registry.js";
import type { ToolEntry } from "../src/tools/source.js";
import type { Tool, ToolOutput } from "../src/tools/tool.js";
import { RecordedTurn } from "../src/turn/recorded-turn.js";
import { deleteKeys } from "../test/helpers/redis.js";
import { REDIS_URL } from "./farm-processes.js";
import { runId } from "./store-fixtures.js";

export const TOOLS_DEFAULTS: FarmConfig["tools"] = ConfigSchema.parse({}).tools;

export class ToolBench {
  private rounds = 0;

  private constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly prefix: string,
    private readonly store: SqliteStore,
    private readonly dir: string,
  ) {}

  static async open(): Promise<ToolBench> {
    const prefix = `bench-tools-${runId()}`;
    const dir = await mkdtemp(path.join(tmpdir(), "farm-bench-tools-"));
    const store = SqliteStore.open(path.join(dir, "farm.sqlite"));
    return new ToolBench(new Redis(REDIS_URL), redisKeys(prefix), prefix, store, dir);
  }

  /** Runs one model round of `calls` on a fresh turn; resolves with its outcome and wall time. */
  async round(
    tools: readonly ToolEntry[],
    calls: ToolCall[],
    policies: ToolCallPolicies,
    settings: Partial<FarmConfig["tools"]> = {},
  ): Promise<{ outcome: RoundOutcome; ms: number }> {
    const sessionId = `s${++this.rounds}`;
    const turnId = `t${this.rounds}`;
    const events = { deltaFlushMs: 50, deltaFlushChars: 160 };
    const appender = new EventAppender(
      this.redis,
      this.keys,
      this.store,
      ConfigSchema.parse({}).events,
    );
    const emitter = new TurnEmitter(
      appender,
      { sessionId, turnId, userId: "bench" },
      events,
      undefined,
    );
    const merged = { ...TOOLS_DEFAULTS, ...settings };
    const orchestrator = new ToolOrchestrator({
      emitter,
      signal: new AbortController().signal,
      abortKind: () => null,
      tools: { byName: new Map(tools.map((t) => [t.name, t])), specs: [] },
      explainMissing: (name) => ({ error: `unknown tool ${name}`, invalid: true }),
      log: createLogger("bench", "error"),
      policies,
      settings: merged,
      context: { workspaceRoot: this.dir, limits: merged },
      attempt: 1,
      recorded: RecordedTurn.empty,
      turnId,
      saveArtifact: async () => null,
    });
    const started = performance.now();
    const outcome = await orchestrator.runRound(1, calls);
    const ms = performance.now() - started;
    await emitter.flush();
    emitter.dispose();
    return { outcome, ms };
  }

  async close(): Promise<void> {
    await deleteKeys(this.redis, `${this.prefix}:*`);
    await this.redis.quit();
    await this.store.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** A read-only tool that answers after `delayMs`, failing transiently with probability `failRate`. */
export function benchTool(
  name: string,
  options: { delayMs?: number; failRate?: number; random?: () => number },
): ToolEntry {
  const random = options.random ?? Math.random;
  const tool: Tool<Record<string, never>> = {
    name,
    description: `bench tool ${name}`,
    version: "1",
    kind: "read_only",
    family: name,
    policy: { idempotent: true },
    input: z.object({}),
    run: async (_args, ctx): Promise<ToolOutput> => {
      if (options.delayMs) await sleep(options.delayMs, ctx.signal);
      if (random() < (options.failRate ?? 0)) {
        return { ok: false, data: null, error: "upstream answered 503", transient: true };
      }
      return { ok: true, data: { ok: name } };
    },
  };
  return builtinEntry(tool as Tool);
}

export function calls(tool: string, count: number): ToolCall[] {
  return Array.from({ length: count }, (_, i) => ({ id: `c${i}`, name: tool, arguments: "{}" }));
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * A real MCP server (server-everything over stdio) behind a registry, as a worker would hold it;
 * resolves once its tools are listed.
 */
export async function everythingServer(
  callTimeoutMs = 120_000,
): Promise<{ registry: ToolRegistry; tool(name: string): ToolEntry; close(): Promise<void> }> {
  const registry = new ToolRegistry();
  addMcpSources(registry, {
    everything: McpServerConfigSchema.parse({
      transport: "stdio",
      command: process.execPath,
      args: [EVERYTHING_SERVER, "stdio"],
      callTimeoutMs,
    }),
  });
  await registry.start();
  const tool = (name: string) => {
    const entry = registry.lookup(`everything@${name}`);
    if (!entry) throw new Error(`server-everything offers no tool ${name}`);
    return entry;
  };
  tool("echo");
  return { registry, tool, close: () => registry.close() };
}

const EVERYTHING_SERVER = fileURLToPath(
  new URL("../node_modules/@modelcontextprotocol/server-everything/dist/index.js", import.meta.url),
);
