/**
 * Everything a turn needs from the outside world, built once per worker process.
 */
import type { Tracer } from "@opentelemetry/api";
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { FarmConfig } from "../config/schema.js";
import type { TokenCalibration } from "../context/token-calibration.js";
import type { EventAppender } from "../events/appender.js";
import type { EventLog } from "../events/event-log.js";
import type { ModelClients } from "../llm/chat-stream.js";
import type { ModelBudget } from "../llm/model-budget.js";
import type { Logger } from "../obs/logger.js";
import type { CancelListener } from "../queue/cancel-signals.js";
import type { SessionLeases } from "../queue/session-lease.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { RedisKeys } from "../redis/keys.js";
import type { Dispatcher } from "../scheduler/dispatcher.js";
import type { FairQueue } from "../scheduler/fair-queue.js";
import type { Store } from "../store/port.js";
import type { ToolCallPolicies } from "../tools/orchestrator/call-policy.js";
import type { ToolRegistry } from "../tools/registry.js";

export interface TurnServices {
  config: FarmConfig;
  logger: Logger;
  store: Store;
  redis: Redis;
  keys: RedisKeys;
  appender: EventAppender;
  eventLog: EventLog;
  leases: SessionLeases;
  cancels: CancelListener;
  queue: Queue<TurnJobData>;
  fair: FairQueue;
  dispatcher: Dispatcher;
  clients: ModelClients;
  budget: ModelBudget;
  tools: ToolRegistry;
  /** Per model, how the provider's prompt token counts relate to our estimate. */
  calibration: TokenCalibration;
  toolPolicies: ToolCallPolicies;
  /** The process's tracer (a no-op one when tracing is off); see obs/tracing.ts. */
  tracer: Tracer;
}
