/**
 * Handing a session from one turn to the next: free the lease, drop the finished turn from the
 * session's order, free the user's running slot and dispatch what became runnable. Also: ending a turn no worker runs (cancelled while queued, given up by BullMQ), and
 * closing out a turn the store already records as ended (recovery).
 *
 * Invariant: a turn gets at most one `turn_terminal`. Step keys guarantee it while the turn's
 * step hash lives (a minute after the end); a close-out after that first checks the log.
 */
import type { FarmConfig } from "../config/schema.js";
import type { EventAppender } from "../events/appender.js";
import type { EventLog } from "../events/event-log.js";
import { TurnEmitter } from "../events/turn-emitter.js";
import type { Dispatcher } from "../scheduler/dispatcher.js";
import type { FairQueue, TurnRef } from "../scheduler/fair-queue.js";
import type { Store, TurnError, TurnRecord } from "../store/port.js";
import { announceTerminal, finalizeTurn } from "./finalize.js";
import { readTurnRecord } from "./read-record.js";

export interface TurnoverDeps {
  config: FarmConfig;
  store: Store;
  appender: EventAppender;
  eventLog: EventLog;
  fair: FairQueue;
  dispatcher: Dispatcher;
}

/**
 * The turn has ended (or is dropped): free its session for the next turn, free its user's
 * running slot, and start a dispatch pass for what that made runnable. The pass is not awaited:
 * a worker must not keep its slot while passes run. `freeingSlot` says the caller still occupies
 * a worker slot it is about to give up, so dispatch may count it as free.
 */
export async function releaseAndWakeNext(
  deps: Pick<TurnoverDeps, "fair" | "dispatcher">,
  turn: TurnRef,
  lease: string | null,
  freeingSlot = false,
): Promise<void> {
  await deps.fair.endTurn(turn, lease);
  void deps.dispatcher.kick(freeingSlot ? 1 : 0);
}

/** An emitter for a turn that is not (or no longer) run under a lease. */
export function unfencedEmitter(deps: Pick<TurnoverDeps, "appender" | "config">, turn: TurnRecord) {
  return new TurnEmitter(deps.appender, eventTarget(turn), deps.config.events, undefined);
}

export function eventTarget(
  turn: Pick<TurnRecord, "sessionId" | "id" | "userId"> & { traceId?: string | null },
) {
  return {
    sessionId: turn.sessionId,
    turnId: turn.id,
    userId: turn.userId,
    ...(turn.traceId ? { traceId: turn.traceId } : {}),
  };
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
  const emitter = unfencedEmitter(deps, turn);
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

/**
 * The store records the turn as ended (a worker died between storing the outcome and finishing
 * its job): announce the ending unless the log already has it, and move the session on.
 */
export async function closeOutEnded(
  deps: TurnoverDeps,
  turn: TurnRecord,
  lease: string | null,
): Promise<void> {
  const announced = turn.lastSeq !== null || (await readTurnRecord(deps, turn)).ended;
  if (!announced) {
    const emitter = unfencedEmitter(deps, turn);
    try {
      await announceTerminal(emitter, turn);
    } finally {
      emitter.dispose();
    }
  }
  await releaseAndWakeNext(deps, turn, lease);
}

export const CANCELLED_BEFORE_START: TurnError = {
  code: "cancelled",
  message: "the turn was cancelled before it started",
  retryable: false,
};

/** A started turn cancelled while no worker ran it (parked for its model, or handed back). */
export const CANCELLED_WHILE_PARKED: TurnError = {
  code: "cancelled",
  message:
    "the turn was cancelled while it waited to resume (for its model's budget, or handed back)",
  retryable: false,
};
