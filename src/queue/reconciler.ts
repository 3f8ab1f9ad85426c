/**
 * Repairs turns that no job will ever finish, so no turn, session or user stays stuck:
 * - a turn still queued or running that the scheduler does not know and that has no job (a
 *   submit that died between the store write and the admission, never retried), or whose job
 *   completed without ending it, is admitted again; a dispatched turn whose job vanished gets
 *   its job back (it keeps its running slot);
 * - a turn whose job failed for good (infrastructure retries used up, stalled too often) ends as
 *   `failed` and its session moves on.
 * It also runs the scheduler's repair (scheduler-repair.ts) and purges expired idempotency
 * records.
 *
 * One pass runs per interval across all worker processes (a Redis lock picks the runner). Only
 * turns older than `minAgeMs` are looked at, so a submit still in flight is left alone. Passes
 * page through all such turns, `PAGES_PER_PASS` pages at a time, resuming where the last stopped.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "../obs/logger.js";
import type { Admission } from "../scheduler/admission.js";
import type { FairQueue } from "../scheduler/fair-queue.js";
import type { SchedulerRepair } from "../scheduler/scheduler-repair.js";
import type { Store, TurnCursor, TurnRecord } from "../store/port.js";
import type { TurnJobData } from "./turn-queue.js";

const BATCH = 100;
const PAGES_PER_PASS = 10;

export interface ReconcilerOptions {
  intervalMs: number;
  minAgeMs: number;
  lockKey: string;
}

export interface ReconcilerParts {
  redis: Redis;
  store: Store;
  queue: Queue<TurnJobData>;
  admission: Admission;
  fair: FairQueue;
  schedulerRepair: SchedulerRepair;
  failTurn: (turn: TurnRecord, reason: string) => Promise<void>;
  logger: Logger;
}

export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private cursor: TurnCursor | undefined;

  private readonly logger: Logger;

  constructor(
    private readonly parts: ReconcilerParts,
    private readonly options: ReconcilerOptions,
  ) {
    this.logger = parts.logger;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.running) {
        this.running = this.pass()
          .catch((err: Error) => {
            this.logger.warn("reconciler pass failed", { error: err.message });
            return 0;
          })
          .finally(() => {
            this.running = null;
          });
      }
    }, this.options.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One repair pass; returns how many turns it repaired. Exposed for tests and operators. */
  async pass(): Promise<number> {
    const won = await this.parts.redis.set(
      this.options.lockKey,
      String(process.pid),
      "PX",
      this.options.intervalMs,
      "NX",
    );
    if (!won) return 0;
    const before = Date.now() - this.options.minAgeMs;
    let repaired = 0;
    for (let page = 0; page < PAGES_PER_PASS; page++) {
      const stale = await this.parts.store.listStaleTurns(before, BATCH, this.cursor);
      for (const turn of stale) {
        // One turn that cannot be repaired must not keep the others stuck: log it and go on.
        try {
          if (await this.repair(turn)) repaired++;
        } catch (err) {
          this.logger.warn("reconciler could not repair a turn", {
            turn_id: turn.id,
            error: (err as Error).message,
          });
        }
      }
      const last = stale.at(-1);
      this.cursor =
        stale.length < BATCH || !last ? undefined : { createdAt: last.createdAt, id: last.id };
      if (!this.cursor) break;
    }
    repaired += await this.parts.schedulerRepair.pass();
    await this.parts.store.purgeExpiredIdempotency(Date.now());
    if (repaired > 0) this.logger.info("reconciler repaired turns", { repaired });
    return repaired;
  }

  private async repair(turn: TurnRecord): Promise<boolean> {
    const { queue, admission, fair } = this.parts;
    const job = await queue.getJob(turn.id);
    const log = this.logger.child({
      user_id: turn.userId,
      session_id: turn.sessionId,
      turn_id: turn.id,
    });
    if (!job) {
      const state = await fair.stateOf(turn);
      // Waiting for its turn: nothing is lost.
      if (state === "waiting") return false;
      if (state === "running") {
        log.warn("dispatched turn had no job; adding it again", { status: turn.status });
        const data = { turnId: turn.id, sessionId: turn.sessionId, userId: turn.userId };
        await queue.add("turn", data, { jobId: turn.id });
        return true;
      }
      log.warn("turn had no job; admitting it again", { status: turn.status });
      await admission.admit(turn);
      return true;
    }
    const state = await job.getState();
    if (state === "failed") {
      log.warn("turn's job failed for good; ending the turn", { reason: job.failedReason });
      await this.parts.failTurn(turn, job.failedReason ?? "the worker failed");
      return true;
    }
    if (state === "completed") {
      log.warn("turn's job completed without ending it; admitting it again");
      await job.remove();
      if (await fair.freeSlot(turn)) log.warn("freed the running slot of the completed job");
      await admission.admit(turn);
      return true;
    }
    return false;
  }
}
