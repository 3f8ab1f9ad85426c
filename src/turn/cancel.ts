/**
 * Cancelling a turn from the API, whatever state it is in.
 *
 * - finished: nothing changes (cancel is idempotent);
 * - queued: the cancel flag is set first; a turn still waiting in its user's fair FIFO is taken
 *   out of it, a dispatched one has its job removed; either way no worker will ever run it and
 *   the API ends it here; if a worker took the job meanwhile, the flag stops it when it tries to
 *   start;
 * - running: the flag and the broadcast reach the worker, which aborts the model call and tools.
 * Then the call waits a little for the turn to end so the answer usually shows the final state.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { notFound } from "../contract/errors.js";
import { requestCancel } from "../queue/cancel-signals.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { RedisKeys } from "../redis/keys.js";
import { isTerminal, type Store, type TurnRecord } from "../store/port.js";
import { CANCELLED_BEFORE_START, endTurnOutsideRun, type TurnoverDeps } from "./turnover.js";

const POLL_MS = 25;

export interface CancelDeps extends TurnoverDeps {
  redis: Redis;
  keys: RedisKeys;
}

export async function cancelTurn(deps: CancelDeps, turnId: string): Promise<TurnRecord> {
  const turn = await deps.store.getTurn(turnId);
  if (!turn) throw notFound("turn", turnId);
  if (isTerminal(turn.status)) return turn;

  await requestCancel(deps.redis, deps.keys, turnId);
  if (
    turn.status === "queued" &&
    ((await deps.fair.withdraw(turn)) || (await removeQueuedJob(deps.queue, turnId)))
  ) {
    await endTurnOutsideRun(deps, turn, "cancelled", CANCELLED_BEFORE_START);
  }
  return waitForEnd(deps.store, turn, deps.config.api.cancelWaitMs);
}

/** True when the job is gone for good: removed now, or never added. */
async function removeQueuedJob(queue: Queue<TurnJobData>, turnId: string): Promise<boolean> {
  const job = await queue.getJob(turnId);
  if (!job) return true;
  const state = await job.getState();
  if (state !== "waiting" && state !== "delayed" && state !== "prioritized") return false;
  try {
    await job.remove();
    return true;
  } catch {
    // A worker locked it between our look and the removal; the cancel flag stops it.
    return false;
  }
}

async function waitForEnd(store: Store, turn: TurnRecord, waitMs: number): Promise<TurnRecord> {
  const deadline = Date.now() + waitMs;
  let current = turn;
  while (Date.now() < deadline) {
    const latest = await store.getTurn(turn.id);
    if (latest) current = latest;
    if (isTerminal(current.status)) return current;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return current;
}
