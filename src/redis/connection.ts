/**
 * Redis connections with the settings each role needs.
 *
 * - `command`: the farm's own commands and scripts; fails fast while Redis is away (API requests
 *   answer 503 instead of hanging) and auto-pipelines: commands issued in the same tick share one
 *   socket write, which matters more than anything else for CPU per turn;
 * - `queue`: a BullMQ Queue (producer side), fails fast too;
 * - `blocking`: for BullMQ workers and blocking reads, retries forever
 *   (`maxRetriesPerRequest: null`, as BullMQ requires);
 * - `subscriber`: pub/sub only.
 * Every connection logs its errors instead of crashing the process.
 */
import { Redis, type RedisOptions } from "ioredis";
import { type Logger, moduleLogger } from "../obs/logger.js";

export type ConnectionRole = "command" | "queue" | "blocking" | "subscriber";

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  command: {
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    connectTimeout: 5_000,
    enableAutoPipelining: true,
  },
  queue: { maxRetriesPerRequest: 2, enableOfflineQueue: true, connectTimeout: 5_000 },
  blocking: { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 5_000 },
  subscriber: { maxRetriesPerRequest: null, enableOfflineQueue: true, connectTimeout: 5_000 },
};

/** Reconnect with capped exponential backoff (BullMQ's recommendation: 1 s … 20 s). */
function retryStrategy(times: number): number {
  return Math.max(Math.min(Math.exp(times), 20_000), 1_000);
}

export function createRedis(url: string, role: ConnectionRole, parent: Logger): Redis {
  const logger = moduleLogger(parent, "redis");
  const client = new Redis(url, {
    ...ROLE_OPTIONS[role],
    retryStrategy,
    connectionName: `wunder-farm:${role}`,
    lazyConnect: false,
  });
  let lastLoggedMs = 0;
  client.on("error", (err: Error) => {
    // A down Redis emits an error per reconnect attempt; one line per 5 s is enough.
    const now = Date.now();
    if (now - lastLoggedMs > 5_000) {
      lastLoggedMs = now;
      logger.warn("redis connection error", { role, error: err.message });
    }
  });
  return client;
}

/**
 * Resolves once the connection is ready. Subscribe only after this: a SUBSCRIBE sent while
 * ioredis is between "connect" and "ready" was seen to succeed yet deliver no messages.
 */
export async function untilReady(client: Redis): Promise<void> {
  if (client.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      client.off("end", onEnd);
      resolve();
    };
    const onEnd = () => {
      client.off("ready", onReady);
      reject(new Error("Redis connection ended before it was ready"));
    };
    client.once("ready", onReady);
    client.once("end", onEnd);
  });
}
