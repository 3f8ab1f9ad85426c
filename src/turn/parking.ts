/**
 * Parking: a turn whose model has no budget for longer than a short wait leaves its worker slot.
 * Its job waits in BullMQ's delayed set (no worker slot, no dispatch window) until the budget is
 * expected back; its session keeps it at the head, and it keeps its user's running slot (it has
 * started, and resumes from its event log).
 *
 * Invariants:
 * - the park is announced (`progress{stage:"waiting_for_model"}`) and flushed while the lease is
 *   still held, then the lease is released with the turn kept at its session's head;
 * - parked turns of one model wake spread out, not all at the instant the hold ends;
 * - a wake-up while the model is still held by a 429 goes back to sleep for one Redis call,
 *   unless a cancel is pending or the turn has waited its maximum;
 * - a cancel that races the park wakes the job at once (a parked job no worker holds is
 *   otherwise removed by the cancel itself).
 * Parking time adds up in the job (`parkedMs`); past `MODEL_DEFER_MAX_MS` the turn fails.
 */
import type { Job } from "bullmq";
import type { TurnEmitter } from "../events/turn-emitter.js";
import { isCancelRequested } from "../queue/cancel-signals.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { TurnRecord } from "../store/port.js";
import type { ModelDeferral } from "./model-gate.js";
import type { TurnServices } from "./services.js";

/** Wake-ups are spread over a quarter of the wait, at most this much. */
const PARK_JITTER_MAX_MS = 3_000;

export interface ParkedRun {
  job: Job<TurnJobData>;
  token: string;
  turn: TurnRecord;
  lease: string;
  emitter: TurnEmitter;
}

/** Parks the turn; the caller then throws BullMQ's DelayedError. */
export async function parkTurn(
  services: TurnServices,
  { job, token, turn, lease, emitter }: ParkedRun,
  deferral: ModelDeferral,
): Promise<void> {
  emitter.emit("progress", `defer.a${turn.attempt}`, {
    stage: "waiting_for_model",
    model: deferral.model,
    reason: deferral.reason,
    retry_after_ms: deferral.retryAfterMs,
  });
  await emitter.flush();
  await services.leases.release(turn.sessionId, turn.id, lease, true);
  const parkMs = withJitter(deferral.retryAfterMs);
  await job.updateData({
    ...job.data,
    parkedMs: (job.data.parkedMs ?? 0) + parkMs,
    parkedFor: deferral.model,
  });
  await job.moveToDelayed(Date.now() + parkMs, token);
  void services.dispatcher.kick();
  await wakeIfCancelled(services, job);
  services.logger.info("turn parked until its model has budget", {
    turn_id: turn.id,
    model: deferral.model,
    reason: deferral.reason,
    retry_after_ms: deferral.retryAfterMs,
  });
}

/**
 * True when the job was sent back to sleep because its model is still held; the caller then
 * throws BullMQ's DelayedError.
 */
export async function sendBackIfStillParked(
  services: TurnServices,
  job: Job<TurnJobData>,
  token: string,
): Promise<boolean> {
  const { parkedFor, parkedMs = 0, turnId } = job.data;
  if (parkedFor === undefined) return false;
  const { budget, config, redis, keys } = services;
  if (parkedMs > config.worker.modelDeferMaxMs) return false;
  const holdMs = await budget.cooldownMs(parkedFor);
  if (holdMs <= 0 || (await isCancelRequested(redis, keys, turnId))) return false;
  const parkMs = withJitter(holdMs);
  await job.updateData({ ...job.data, parkedMs: parkedMs + parkMs });
  await job.moveToDelayed(Date.now() + parkMs, token);
  void services.dispatcher.kick();
  await wakeIfCancelled(services, job);
  return true;
}

/**
 * A cancel that arrived while the turn was being parked found its job still active and left
 * it to the worker; wake the job so the turn ends now, not when its park is over.
 */
async function wakeIfCancelled(services: TurnServices, job: Job<TurnJobData>): Promise<void> {
  if (await isCancelRequested(services.redis, services.keys, job.data.turnId)) {
    await job.promote().catch(() => undefined);
  }
}

function withJitter(waitMs: number): number {
  return waitMs + Math.random() * Math.min(waitMs / 4, PARK_JITTER_MAX_MS);
}
