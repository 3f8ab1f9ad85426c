/**
 * Handing a session from one turn to the next: free the lease, drop the finished turn from the
 * session's order, and wake the next turn's delayed job so it starts without waiting out its delay.
 * Also: ending a turn that never started (cancelled while queued), from the API or a worker.
 */
import type { Queue } from "bullmq";
import type { FarmConfig } from "../config/schema.js";
import type { EventAppender } from "../events/appender.js";
import { TurnEmitter } from "../events/turn-emitter.js";
import type { SessionLeases } from "../queue/session-lease.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { Store, TurnError, TurnRecord } from "../store/port.js";
import { finalizeTurn } from "./finalize.js";

export interface TurnoverDeps {
  config: FarmConfig;
  store: Store;
  appender: EventAppender;
  leases: SessionLeases;
  queue: Queue<TurnJobData>;
}

export async function releaseAndWakeNext(
  deps: Pick<TurnoverDeps, "leases" | "queue">,
  turn: TurnRecord,
  lease: string | null,
): Promise<void> {
  const next = await deps.leases.release(turn.sessionId, turn.id, lease);
  if (!next) return;
  const job = await deps.queue.getJob(next);
  // Promotion can lose a race with the job's own delay expiring; either way it runs.
  if (job && (await job.isDelayed())) await job.promote().catch(() => undefined);
}

/**
 * Ends a turn no worker is running (cancelled while queued, or its job gave up for good):
 * store the outcome, announce it, and move the session on.
 */
export async function endTurnOutsideRun(
  deps: TurnoverDeps,
  turn: TurnRecord,
  status: "cancelled" | "failed",
  error: TurnError,
): Promise<void> {
  const emitter = new TurnEmitter(
    deps.appender,
    { sessionId: turn.sessionId, turnId: turn.id, userId: turn.userId },
    deps.config.events,
    undefined,
  );
  try {
    await finalizeTurn(
      deps.store,
      emitter,
      turn,
      {
        status,
        answer: null,
        stopReason: status === "cancelled" ? "cancelled" : "error",
        usage: null,
        error,
      },
      [],
    );
  } finally {
    emitter.dispose();
  }
  await releaseAndWakeNext(deps, turn, null);
}

export const CANCELLED_BEFORE_START: TurnError = {
  code: "cancelled",
  message: "the turn was cancelled before it started",
  retryable: false,
};
