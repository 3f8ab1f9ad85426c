/**
 * A worker's tools: the registry (built-ins, then the configured MCP servers), the shared call
 * policies (breakers, bulkheads), health checks, and the catalogue it publishes for the API.
 *
 * MCP servers connect in the background: a worker takes turns at once, and a server's tools
 * join the prompts when it is ready (the registry withholds an unavailable source's tools).
 */
import { randomUUID } from "node:crypto";
import os from "node:os";
import type { Redis } from "ioredis";
import type { FarmConfig } from "../config/schema.js";
import type { Logger } from "../obs/logger.js";
import type { RedisKeys } from "../redis/keys.js";
import { BuiltinToolSource } from "./builtin/builtin-source.js";
import { BUILTIN_TOOLS } from "./builtin/index.js";
import { CatalogPublisher } from "./catalog-board.js";
import { addMcpSources } from "./mcp/mcp-sources.js";
import { ToolCallPolicies } from "./orchestrator/call-policy.js";
import { toolMetrics } from "./orchestrator/tool-metrics.js";
import { ToolRegistry } from "./registry.js";

export interface WorkerTools {
  registry: ToolRegistry;
  policies: ToolCallPolicies;
  close(): Promise<void>;
}

export async function startWorkerTools(
  config: FarmConfig,
  redis: Redis,
  keys: RedisKeys,
  logger: Logger,
): Promise<WorkerTools> {
  const registry = new ToolRegistry(logger);
  registry.add(new BuiltinToolSource(BUILTIN_TOOLS));
  addMcpSources(registry, config.tools.mcpServers, logger);
  const policies = new ToolCallPolicies(config.tools, {
    onRetry: (key) => toolMetrics.retry(key),
    onBreakerState: (key, state) => {
      toolMetrics.breaker(key, state);
      logger.warn("tool source breaker changed state", { breaker: key, state });
    },
  });
  const workerId = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const publisher = new CatalogPublisher(redis, keys, registry, workerId, logger);
  void registry.start().then(() => registry.startHealthChecks(config.tools.healthCheckIntervalMs));
  await publisher.start();
  return {
    registry,
    policies,
    async close() {
      await publisher.stop();
      await registry.close();
    },
  };
}
