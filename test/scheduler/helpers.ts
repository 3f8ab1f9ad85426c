/**
 * Builds the scheduler's parts on a private key prefix and a real BullMQ queue, with
 * scheduler settings a test overrides only where it matters.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { ConfigSchema, type FarmConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/obs/logger.js";
import type { TurnJobData } from "../../src/queue/turn-queue.js";
import type { RedisKeys } from "../../src/redis/keys.js";
import { buildScheduler, type Scheduler } from "../../src/scheduler/scheduler.js";

export function schedulerFor(
  redis: Redis,
  keys: RedisKeys,
  queue: Queue<TurnJobData>,
  settings: Partial<FarmConfig["scheduler"]> = {},
): Scheduler {
  const config = ConfigSchema.parse({ scheduler: settings });
  return buildScheduler(
    { config, redis, keys, logger: createLogger("test-scheduler", "error") },
    queue,
  );
}
