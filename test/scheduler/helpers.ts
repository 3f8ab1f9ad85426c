/**
 * Builds the scheduler's parts on a private key prefix (its dispatcher adds jobs to the turn
 * queue under that prefix), with scheduler settings a test overrides only where it matters.
 */
import type { Queue } from "bullmq";
import { Redis } from "ioredis";
import { ConfigSchema, type FarmConfig } from "../../src/config/schema.js";
import { createLogger } from "../../src/obs/logger.js";
import { createTurnQueue, type TurnJobData } from "../../src/queue/turn-queue.js";
import { type RedisKeys, redisKeys } from "../../src/redis/keys.js";
import { buildScheduler, type Scheduler } from "../../src/scheduler/scheduler.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";
import { testPrefix, uniqueId } from "../queue/helpers.js";

export function schedulerFor(
  redis: Redis,
  keys: RedisKeys,
  settings: Partial<FarmConfig["scheduler"]> = {},
): Scheduler {
  const config = ConfigSchema.parse({ scheduler: settings });
  const logger = createLogger("test-scheduler", "error");
  return buildScheduler({ config, redis, keys, logger });
}

/** What each test of a scheduler spec gets: fresh keys and queue, shared connections. */
export interface SchedulerFixture {
  redis: Redis;
  keys: RedisKeys;
  queue: Queue<TurnJobData>;
}

/**
 * Registers the hooks of a scheduler spec (call it inside `describe`): one Redis connection for
 * the file, a fresh key prefix and BullMQ queue per test, everything deleted afterwards.
 */
export function schedulerFixture(name: string): SchedulerFixture {
  const filePrefix = testPrefix(name);
  const fixture = {} as SchedulerFixture;
  let queueConnection: Redis;

  before(() => {
    fixture.redis = new Redis(REDIS_URL);
    queueConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  });

  beforeEach(() => {
    fixture.keys = redisKeys(`${filePrefix}-${uniqueId("t")}`);
    fixture.queue = createTurnQueue(queueConnection, fixture.keys.bullPrefix);
  });

  afterEach(async () => {
    await fixture.queue.obliterate({ force: true });
    await fixture.queue.close();
  });

  after(async () => {
    await deleteKeys(fixture.redis, `${filePrefix}-*`);
    await queueConnection.quit();
    await fixture.redis.quit();
  });

  return fixture;
}
