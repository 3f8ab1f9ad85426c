/**
 * What the API's handlers use, built once per API process by `startApi`.
 */
import type { Queue } from "bullmq";
import type { LiveHub } from "../src/events/live-hub.js";
import type { Admission } from "../src/queue/admission.js";
import type { SessionLeases } from "../src/queue/session-lease.js";
import type { TurnJobData } from "../src/queue/turn-queue.js";
import type { Foundation } from "../src/roles/foundation.js";
import type { ToolCatalog } from "../src/tools/catalog.js";

export interface ApiContext extends Foundation {
  liveHub: LiveHub;
  admission: Admission;
  leases: SessionLeases;
  queue: Queue<TurnJobData>;
  tools: ToolCatalog;
}
