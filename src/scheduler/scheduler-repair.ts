/**
 * Repairs the scheduler's state after crashes, as part of each reconciler pass:
 * - running slots held by turns that ended a while ago (or no longer exist) are freed: the
 *   worker died between storing the outcome and releasing, and no job is left to finish it;
 * - each active user's counters are recomputed and its readiness re-evaluated;
 * - a user whose head turn waits behind a session turn that has ended is unblocked.
 * Every step is idempotent, so a repair that races the normal path does no harm.
 */
import type { Logger } from "../obs/logger.js";
import { isTerminal, type Store, type TurnRecord } from "../store/port.js";
import type { Dispatcher } from "./dispatcher.js";
import type { FairQueue, TurnRef } from "./fair-queue.js";

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
    /**
     * A turn that ended less than this ago may still be finishing on its worker (outcome
     * stored, terminal event and release on their way): the repair leaves it alone.
     */
    private readonly endedMinAgeMs: number,
  ) {}

  /** One repair pass; returns how many things it fixed. */
  async pass(): Promise<number> {
    let repaired = 0;
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
    if (turn && Date.now() - (turn.finishedAt ?? 0) < this.endedMinAgeMs) return false;
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
