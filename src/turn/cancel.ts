/**
 * Cancelling a turn from the API, whatever state it is in.
 *
 * - finished: nothing changes (cancel is idempotent);
 * - queued: the cancel flag is set first; a turn still waiting in its user's fair FIFO is taken
 *   out of it, a dispatched one has its job removed; either way no worker will ever run it and
 *   the API ends it here; if a worker took the job meanwhile, the flag stops it when it tries to
 *   start;
 * - running: the flag and the broadcast reach the worker, which aborts the model call and tools;
 *   a running turn no worker holds (parked for its model's budget, or handed back at shutdown)
 *   has its job removed and is ended here, so it does not wait out its park;
 * Then the call waits a little for the turn to end so the answer usually shows the final state.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { notFound } from "../contract/errors.js";
import { requestCancel } from "../queue/cancel-signals.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import type { RedisKeys } from "../redis/keys.js";
import { isTerminal, type Store, type TurnRecord } from "../store/port.js";
import {
  CANCELLED_BEFORE_START,
  CANCELLED_WHILE_PARKED,
  endTurnOutsideRun,
  type TurnoverDeps,
} from "./turnover.js";

const POLL_MS = 25;

export interface CancelDeps extends TurnoverDeps {
  redis: Redis;
  keys: RedisKeys;
  queue: Queue<TurnJobData>;
}

export async function cancelTurn(deps: CancelDeps, turnId: string): Promise<TurnRecord> {
  const turn = await deps.store.getTurn(turnId);
  if (!turn) throw notFound("turn", turnId);
  if (isTerminal(turn.status)) return turn;

  await requestCancel(deps.redis, deps.keys, turnId);
  if (
    turn.status === "queued" &&
    ((await deps.fair.withdraw(turn)) || (await removeIdleJob(deps.queue, turnId, true)))
  ) {
    await endTurnOutsideRun(deps, turn, "cancelled", CANCELLED_BEFORE_START);
  } else if (turn.status === "running" && (await removeIdleJob(deps.queue, turnId, false))) {
    await endTurnOutsideRun(deps, turn, "cancelled", CANCELLED_WHILE_PARKED);
  }
  return waitForEnd(deps.store, turn, deps.config.api.cancelWaitMs);
}

/**
 * True when no worker holds the turn's job and none ever will: the job was waiting or delayed
 * and is removed now, or (`missingMeansGone`, a queued turn) it was never added.
 */
async function removeIdleJob(
  queue: Queue<TurnJobData>,
  turnId: string,
  missingMeansGone: boolean,
): Promise<boolean> {
  const job = await queue.getJob(turnId);
  if (!job) return missingMeansGone;
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
