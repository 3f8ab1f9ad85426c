/**
 * Repairs turns that no job will ever finish, so no turn and no session stays stuck:
 * - a turn still queued or running whose job is missing (a submit that died between the store
 *   write and the enqueue, and was never retried), or whose job completed without ending it, is
 *   admitted again;
 * - a turn whose job failed for good (infrastructure retries used up, stalled too often) ends as
 *   `failed` and its session moves on.
 * It also purges expired idempotency records.
 *
 * One pass runs per interval across all worker processes (a Redis lock picks the runner). Only
 * turns older than `minAgeMs` are looked at, so a submit still in flight is left alone. Passes
 * page through all such turns, `PAGES_PER_PASS` pages at a time, resuming where the last stopped.
 */
import type { Queue } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "../obs/logger.js";
import type { Store, TurnCursor, TurnRecord } from "../store/port.js";
import type { Admission } from "./admission.js";
import type { TurnJobData } from "./turn-queue.js";

const BATCH = 100;
const PAGES_PER_PASS = 10;

export interface ReconcilerOptions {
  intervalMs: number;
  minAgeMs: number;
  lockKey: string;
}

export class Reconciler {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;
  private cursor: TurnCursor | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly store: Store,
    private readonly queue: Queue<TurnJobData>,
    private readonly admission: Admission,
    private readonly failTurn: (turn: TurnRecord, reason: string) => Promise<void>,
    private readonly options: ReconcilerOptions,
    private readonly logger: Logger,
  ) {}

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
    const won = await this.redis.set(
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
      const stale = await this.store.listStaleTurns(before, BATCH, this.cursor);
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
    await this.store.purgeExpiredIdempotency(Date.now());
    if (repaired > 0) this.logger.info("reconciler repaired turns", { repaired });
    return repaired;
  }

  private async repair(turn: TurnRecord): Promise<boolean> {
    const job = await this.queue.getJob(turn.id);
    const log = this.logger.child({
      user_id: turn.userId,
      session_id: turn.sessionId,
      turn_id: turn.id,
    });
    if (!job) {
      log.warn("turn had no job; admitting it again", { status: turn.status });
      await this.admission.admit(turn);
      return true;
    }
    const state = await job.getState();
    if (state === "failed") {
      log.warn("turn's job failed for good; ending the turn", { reason: job.failedReason });
      await this.failTurn(turn, job.failedReason ?? "the worker failed");
      return true;
    }
    if (state === "completed") {
      log.warn("turn's job completed without ending it; admitting it again");
      await job.remove();
      await this.admission.admit(turn);
      return true;
    }
    return false;
  }
}
