/**
 * Admission: how an accepted turn gets onto the queue. This policy is plain FIFO per
 * queue; the fair scheduler replaces this module without touching its callers.
 *
 * Invariant: `admit` is idempotent, so a retried submit (same idempotency key) or a repair by the
 * reconciler can call it again for the same turn without queueing it twice.
 */
import type { Queue } from "bullmq";
import type { TurnRecord } from "../store/port.js";
import type { SessionLeases } from "./session-lease.js";
import type { TurnJobData } from "./turn-queue.js";

export class Admission {
  constructor(
    private readonly queue: Queue<TurnJobData>,
    private readonly leases: SessionLeases,
  ) {}

  async admit(turn: TurnRecord): Promise<void> {
    await this.leases.enqueue(turn.sessionId, turn.id);
    await this.queue.add(
      "turn",
      { turnId: turn.id, sessionId: turn.sessionId, userId: turn.userId },
      { jobId: turn.id },
    );
  }
}
