/**
 * The fair scheduler's parts as one process uses them, built from the shared foundation. API
 * processes admit and dispatch; workers also release slots and tick.
 */
import type { Redis } from "ioredis";
import type { FarmConfig } from "../config/schema.js";
import { type Logger, moduleLogger } from "../obs/logger.js";
import type { RedisKeys } from "../redis/keys.js";
import { Admission } from "./admission.js";
import { AdmissionGate } from "./admission-gate.js";
import { Dispatcher } from "./dispatcher.js";
import { FairQueue } from "./fair-queue.js";
import { QueuePositions } from "./queue-position.js";
import { Tiers } from "./tiers.js";

export interface Scheduler {
  admission: Admission;
  gate: AdmissionGate;
  fair: FairQueue;
  dispatcher: Dispatcher;
  positions: QueuePositions;
  tiers: Tiers;
}

export function buildScheduler(base: {
  config: FarmConfig;
  redis: Redis;
  keys: RedisKeys;
  logger: Logger;
}): Scheduler {
  const { config, redis, keys, logger } = base;
  const settings = config.scheduler;
  const defaultCap = settings.maxRunningPerUser;
  const tiers = new Tiers(settings);
  const gate = new AdmissionGate(redis, keys, settings);
  const fair = new FairQueue(redis, keys, defaultCap);
  const dispatcher = new Dispatcher(
    redis,
    keys,
    {
      defaultCap,
      prefetch: settings.dispatchPrefetch,
      tierOf: (userId) => tiers.limitsOf(userId).tier,
    },
    moduleLogger(logger, "scheduler"),
  );
  return {
    admission: new Admission(gate, fair, dispatcher, tiers),
    gate,
    fair,
    dispatcher,
    positions: new QueuePositions(redis, keys, defaultCap),
    tiers,
  };
}
