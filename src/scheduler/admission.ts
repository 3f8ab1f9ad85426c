/**
 * How an accepted turn enters the farm: the gate's reservation before the store write, then the
 * user's fair FIFO and a dispatch pass after it. The submit path and the reconciler use this
 * and nothing below it.
 *
 * Invariant: `admit` is idempotent (see fair-queue.ts), so a retried submit or a repair can call
 * it again for the same turn without queueing it twice.
 */
import type { AdmissionGate, OnBusy, Reservation } from "./admission-gate.js";
import type { Dispatcher } from "./dispatcher.js";
import type { FairQueue, TurnRef } from "./fair-queue.js";
import type { Tiers } from "./tiers.js";

export class Admission {
  constructor(
    private readonly gate: AdmissionGate,
    private readonly fair: FairQueue,
    private readonly dispatcher: Dispatcher,
    private readonly tiers: Tiers,
  ) {}

  /** Throws the client's 409/429/503 when the turn may not enter; see AdmissionGate. */
  reserve(userId: string, sessionId: string | null, onBusy: OnBusy): Promise<Reservation> {
    return this.gate.reserve({ userId, ...this.tiers.limitsOf(userId) }, sessionId, onBusy);
  }

  cancelReservation(reservation: Reservation): Promise<void> {
    return this.gate.cancel(reservation);
  }

  /** Queues the turn fairly and runs a dispatch pass, which may hand it to a worker at once. */
  async admit(turn: TurnRef, reservation?: Reservation): Promise<void> {
    await this.fair.admit(turn, this.tiers.limitsOf(turn.userId), reservation?.token);
    await this.dispatcher.kick();
  }
}
