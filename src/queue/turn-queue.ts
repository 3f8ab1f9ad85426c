/**
 * The one BullMQ queue turns run from, and the job shape on it.
 *
 * Invariants:
 * - job id = turn id, so adding a turn twice is a no-op while its job exists;
 * - job data holds ids (and parking state) only: inputs, outputs and secrets stay in the store;
 * - finished jobs are removed by age and count, so Redis does not grow with history
 *   (the store is the record of what happened).
 */
import { Queue } from "bullmq";
import type { Redis } from "ioredis";

export const TURN_QUEUE_NAME = "turns";

export interface TurnJobData {
  turnId: string;
  sessionId: string;
  userId: string;
  /** How long the turn has been parked for models' budgets in total (ms, as planned). */
  parkedMs?: number;
  /** The model the turn was last parked for; a wake-up checks its hold before resuming. */
  parkedFor?: string;
}

/** Infrastructure failures (not turn failures: those end the turn normally) are retried. */
const JOB_ATTEMPTS = 3;
const JOB_BACKOFF_MS = 1_000;
const KEEP_COMPLETED = { age: 3_600, count: 1_000 };
const KEEP_FAILED = { age: 7 * 86_400, count: 10_000 };
/** BullMQ's queue-wide event stream; we do not consume it, so keep it short. */
const QUEUE_EVENTS_MAX_LEN = 1_000;

/** Options of every turn job, whoever adds it (a `Queue.add`, or the dispatcher's Lua). */
export const TURN_JOB_OPTIONS = {
  attempts: JOB_ATTEMPTS,
  backoff: { type: "exponential", delay: JOB_BACKOFF_MS },
  removeOnComplete: KEEP_COMPLETED,
  removeOnFail: KEEP_FAILED,
} as const;

/** The name every turn job carries. */
export const TURN_JOB_NAME = "turn";

export function createTurnQueue(connection: Redis, bullPrefix: string): Queue<TurnJobData> {
  return new Queue<TurnJobData>(TURN_QUEUE_NAME, {
    connection,
    prefix: bullPrefix,
    streams: { events: { maxLen: QUEUE_EVENTS_MAX_LEN } },
    defaultJobOptions: TURN_JOB_OPTIONS,
  });
}
