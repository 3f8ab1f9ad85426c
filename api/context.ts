/**
 * What the API's handlers use, built once per API process by `startApi`.
 */
import type { Queue } from "bullmq";
import type { LiveHub } from "../src/events/live-hub.js";
import type { ModelBudget } from "../src/llm/model-budget.js";
import type { TurnJobData } from "../src/queue/turn-queue.js";
import type { Foundation } from "../src/roles/foundation.js";
import type { Admission } from "../src/scheduler/admission.js";
import type { Dispatcher } from "../src/scheduler/dispatcher.js";
import type { FairQueue } from "../src/scheduler/fair-queue.js";
import type { Scheduler } from "../src/scheduler/scheduler.js";
import type { ToolDirectory } from "../src/tools/catalog-board.js";

export interface ApiContext extends Foundation {
  liveHub: LiveHub;
  admission: Admission;
  scheduler: Scheduler;
  /** Read here for the admin view; workers take from it. */
  budget: ModelBudget;
  fair: FairQueue;
  dispatcher: Dispatcher;
  queue: Queue<TurnJobData>;
  tools: ToolDirectory;
}
