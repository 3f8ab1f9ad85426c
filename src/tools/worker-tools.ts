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

/**
 * `subscriber` is a connection in subscriber mode shared with other listeners: it gets the
 * operators' refresh requests (`POST /v1/admin/tools/refresh`).
 */
export async function startWorkerTools(
  config: FarmConfig,
  redis: Redis,
  subscriber: Redis,
  keys: RedisKeys,
  logger: Logger,
): Promise<WorkerTools> {
  const registry = new ToolRegistry(logger);
  registry.add(new BuiltinToolSource(BUILTIN_TOOLS));
  addMcpSources(registry, config.tools.mcpServers, logger);
  const policies = new ToolCallPolicies(config.tools, {
    onRetry: (key) => toolMetrics.retry(key),
    onBreakerState: (key, state, created) => {
      toolMetrics.breaker(key, state);
      if (!created) logger.warn("tool source breaker changed state", { breaker: key, state });
    },
  });
  const workerId = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const publisher = new CatalogPublisher(redis, keys, registry, workerId, logger);
  let closed = false;
  void registry.start().then(() => {
    if (!closed) registry.startHealthChecks(config.tools.healthCheckIntervalMs);
  });
  const onRefresh = (channel: string) => {
    if (channel !== keys.toolRefreshChannel || closed) return;
    logger.info("tool sources refresh requested");
    void registry.refresh();
  };
  subscriber.on("message", onRefresh);
  await subscriber.subscribe(keys.toolRefreshChannel);
  await publisher.start();
  return {
    registry,
    policies,
    async close() {
      closed = true;
      subscriber.off("message", onRefresh);
      await subscriber.unsubscribe(keys.toolRefreshChannel).catch(() => undefined);
      await publisher.stop();
      await registry.close();
    },
  };
}
