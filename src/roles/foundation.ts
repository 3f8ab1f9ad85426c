/**
 * What every farm role builds first: logger, Redis command connection, store, key layout and
 * the event appender; and how it lets go of them.
 */
import type { Redis } from "ioredis";
import type { FarmConfig } from "../config/schema.js";
import { EventAppender } from "../events/appender.js";
import { EventLog } from "../events/event-log.js";
import type { Logger } from "../obs/logger.js";
import { createRedis } from "../redis/connection.js";
import { type RedisKeys, redisKeys } from "../redis/keys.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/port.js";

export interface Foundation {
  config: FarmConfig;
  logger: Logger;
  redis: Redis;
  keys: RedisKeys;
  store: Store;
  appender: EventAppender;
  eventLog: EventLog;
}

export async function buildFoundation(config: FarmConfig, logger: Logger): Promise<Foundation> {
  const store = await openStore(config);
  const redis = createRedis(config.redis.url, "command", logger);
  const keys = redisKeys(config.redis.prefix);
  return {
    config,
    logger,
    redis,
    keys,
    store,
    appender: new EventAppender(redis, keys, store, config.events),
    eventLog: new EventLog(redis, keys, store),
  };
}

export async function closeFoundation(f: Foundation): Promise<void> {
  await f.redis.quit().catch(() => f.redis.disconnect());
  await f.store.close();
}
