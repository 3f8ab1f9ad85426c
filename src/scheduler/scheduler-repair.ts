/**
 * Repairs the scheduler's state after crashes, as part of each reconciler pass:
 * - claims whose dispatcher died before adding their BullMQ job get the job;
 * - running slots held by turns that have ended (or no longer exist) are freed: the worker died
 *   between storing the outcome and releasing, and no job is left to finish the release;
 * - each active user's counters are recomputed and its readiness re-evaluated;
 * - a user whose head turn waits behind a session turn that has ended is unblocked.
 * Every step is idempotent, so a repair that races the normal path does no harm.
 */
import type { Logger } from "../obs/logger.js";
import { isTerminal, type Store, type TurnRecord } from "../store/port.js";
import type { Dispatcher } from "./dispatcher.js";
import type { FairQueue, TurnRef } from "./fair-queue.js";

/** A claim older than this lost its dispatcher (a healthy one adds the job within milliseconds). */
const STALE_CLAIM_MS = 10_000;

export interface RepairHooks {
  /** The turn has ended in the store: make sure it is announced and its session moves on. */
  closeOut(turn: TurnRecord): Promise<void>;
  /** Frees the slot and session place of a turn the store does not know. */
  drop(turn: TurnRef): Promise<void>;
}

export class SchedulerRepair {
  constructor(
    private readonly store: Store,
    private readonly fair: FairQueue,
    private readonly dispatcher: Dispatcher,
    private readonly hooks: RepairHooks,
    private readonly logger: Logger,
  ) {}

  /** One repair pass; returns how many things it fixed. */
  async pass(): Promise<number> {
    let repaired = await this.dispatcher.repairOutbox(STALE_CLAIM_MS);
    for (const userId of await this.fair.activeUsers()) {
      for (const turnId of await this.fair.runningTurns(userId)) {
        if (await this.freeIfEnded(turnId, userId, null)) repaired++;
      }
      await this.fair.recount(userId);
      const blocked = await this.fair.blockedHead(userId);
      if (blocked && (await this.freeIfEnded(blocked.blocker, userId, blocked.sessionId))) {
        repaired++;
      }
    }
    if (repaired > 0) await this.dispatcher.kick();
    return repaired;
  }

  private async freeIfEnded(
    turnId: string,
    userId: string,
    sessionId: string | null,
  ): Promise<boolean> {
    const turn = await this.store.getTurn(turnId);
    if (turn && !isTerminal(turn.status)) return false;
    this.logger.warn("scheduler repair: freeing an ended turn's place", {
      turn_id: turnId,
      user_id: userId,
      status: turn?.status ?? "unknown",
    });
    if (turn) await this.hooks.closeOut(turn);
    else await this.hooks.drop({ id: turnId, userId, sessionId: sessionId ?? "" });
    return true;
  }
}
