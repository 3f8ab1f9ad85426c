/**
 * Starts the API role: builds its context, listens, and stops cleanly (in-flight requests
 * finish, open event streams are closed, connections released).
 */
import type { AddressInfo } from "node:net";
import type { FarmConfig } from "../src/config/schema.js";
import { LiveHub } from "../src/events/live-hub.js";
import { registerPersistBacklogGauges } from "../src/events/persist-backlog.js";
import { ModelBudget } from "../src/llm/model-budget.js";
import type { Logger } from "../src/obs/logger.js";
import { createTurnQueue } from "../src/queue/turn-queue.js";
import { createRedis } from "../src/redis/connection.js";
import { buildFoundation, closeFoundation } from "../src/roles/foundation.js";
import { registerQueueMetrics } from "../src/scheduler/queue-metrics.js";
import { buildScheduler } from "../src/scheduler/scheduler.js";
import { BuiltinToolSource } from "../src/tools/builtin/builtin-source.js";
import { BUILTIN_TOOLS } from "../src/tools/builtin/index.js";
import { ToolDirectory } from "../src/tools/catalog-board.js";
import { ToolRegistry } from "../src/tools/registry.js";
import { createApp } from "./app.js";
import type { ApiContext } from "./context.js";

export interface RunningApi {
  port: number;
  url: string;
  context: ApiContext;
  stop(): Promise<void>;
}

/** The API runs no tools; it knows the built-ins, and the rest from the workers' board. */
function builtinRegistry(): ToolRegistry {
  const registry = new ToolRegistry();
  registry.add(new BuiltinToolSource(BUILTIN_TOOLS));
  return registry;
}

export async function startApi(config: FarmConfig, logger: Logger): Promise<RunningApi> {
  const foundation = await buildFoundation(config, logger);
  const subscriber = createRedis(config.redis.url, "subscriber", logger);
  const queueConnection = createRedis(config.redis.url, "queue", logger);
  const queue = createTurnQueue(queueConnection, foundation.keys.bullPrefix);
  const scheduler = buildScheduler(foundation);
  const context: ApiContext = {
    ...foundation,
    liveHub: await LiveHub.start(subscriber, foundation.keys),
    admission: scheduler.admission,
    scheduler,
    budget: new ModelBudget(foundation.redis, config.redis.prefix, config.models),
    fair: scheduler.fair,
    dispatcher: scheduler.dispatcher,
    queue,
    tools: new ToolDirectory(foundation.redis, foundation.keys, builtinRegistry()),
  };
  registerPersistBacklogGauges(foundation.redis, foundation.keys);
  registerQueueMetrics({ redis: foundation.redis, keys: foundation.keys, queue });
  const server = createApp(context).listen(config.api.port, config.api.host);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  // Keep idle client connections longer than typical proxies do, so they are reused.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  const port = (server.address() as AddressInfo).port;
  logger.info("api listening", { port, host: config.api.host });

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    context,
    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // Event streams never end on their own; close them so shutdown does not hang.
        setTimeout(() => server.closeAllConnections(), 1_000).unref();
      });
      await scheduler.dispatcher.stop();
      await queue.close();
      await Promise.all(
        [subscriber, queueConnection].map((c) => c.quit().catch(() => c.disconnect())),
      );
      await closeFoundation(foundation);
      logger.info("api stopped");
    },
  };
}
