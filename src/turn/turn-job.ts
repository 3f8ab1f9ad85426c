/**
 * Runs one turn job, start to finish: session lease, resume record, the agent loop, the ending,
 * and waking the session's next turn.
 *
 * Invariants:
 * - every way out stops the renewal timer and the cancel watch; every turn-level ending releases
 *   the lease (dropped, or kept in place on hand-back); an infrastructure failure leaves it to
 *   expire or to be taken over by the retry of the same turn;
 * - a turn whose session is still busy (the scheduler dispatches only a session's head turn, so
 *   only a lease left by a dead attempt can do this) does not hold a worker slot: its job is
 *   delayed and retried;
 * - a turn whose model is out of budget for longer than a short wait is parked (delayed job),
 *   not kept in a worker slot;
 * - a worker that loses the lease stops writing at once (appends are fenced); if another attempt
 *   of the turn holds the lease it leaves the turn to it, otherwise the job is retried;
 * - only turn-level outcomes end a turn; an infrastructure failure (Redis, store) throws so
 *   BullMQ retries the job, and the retry resumes from the event log.
 */
import { randomUUID } from "node:crypto";
import { DelayedError, type Job, WaitingError } from "bullmq";
import { LeaseLostError } from "../events/appender.js";
import { TurnEmitter } from "../events/turn-emitter.js";
import type { AgentSpan, TurnTrace } from "../obs/genai-spans.js";
import type { Logger } from "../obs/logger.js";
import { TurnMonitor } from "../obs/turn-monitor.js";
import type { TurnJobData } from "../queue/turn-queue.js";
import { isTerminal, type SessionContext, type TurnRecord } from "../store/port.js";
import { ensureWorkspace } from "../tools/builtin/workspace.js";
import { inAttemptSpan } from "./attempt-span.js";
import { keepCompaction } from "./compaction-run.js";
import { snapshotIfDue } from "./context-snapshot.js";
import { finalizeTurn, type TurnEnding } from "./finalize.js";
import { type AbortReason, classifyEarlyStop, TurnAbort } from "./loop-outcome.js";
import type { ModelDeferral } from "./model-gate.js";
import { parkTurn, sendBackIfStillParked } from "./parking.js";
import { readTurnRecord } from "./read-record.js";
import { RecordedTurn } from "./recorded-turn.js";
import type { TurnServices } from "./services.js";
import type { TurnContext } from "./turn-context.js";
import { ToolGuardStop, type TurnLoop } from "./turn-loop.js";
import { turnMetrics } from "./turn-metrics.js";
import { buildTurnLoop, turnUsage } from "./turn-setup.js";
import {
  CANCELLED_BEFORE_START,
  CANCELLED_WHILE_PARKED,
  closeOutEnded,
  endTurnOutsideRun,
  eventTarget,
  releaseAndWakeNext,
} from "./turnover.js";

/** A turn that found its session's lease still held (by a dead attempt) retries this often. */
const SESSION_BUSY_RETRY_MS = 1_000;
const WORKSPACE_CACHE_ENTRIES = 10_000;

type LoopResult =
  | {
      kind: "ended";
      ending: TurnEnding;
      history: TurnLoop["completedHistory"];
      loaded: SessionContext;
      context: TurnContext;
    }
  | { kind: "hand_back" }
  | { kind: "defer"; deferral: ModelDeferral }
  | { kind: "abandon" };

export type TurnJobOutcome =
  | "completed"
  | "failed"
  | "cancelled"
  | "abandoned"
  | "already_finished"
  | "unknown_turn";

export class TurnJobRunner {
  private readonly active = new Map<string, (reason: AbortReason) => void>();
  /** Workspace roots already created, so a turn does not pay mkdir + realpath each time. */
  private readonly workspaces = new Map<string, Promise<string>>();

  /** Publishes what each running turn does to the admin monitor (GET /v1/admin/monitor). */
  private readonly monitor: TurnMonitor;

  constructor(private readonly services: TurnServices) {
    this.monitor = new TurnMonitor(services.redis, services.keys, services.logger);
  }

  /** Turns this worker is running now. */
  get activeTurns(): number {
    return this.active.size;
  }

  /** Aborts every running turn so it is handed back to the queue (graceful shutdown). */
  handBackAll(): void {
    for (const abort of this.active.values()) abort("shutdown");
  }

  async process(job: Job<TurnJobData>, token: string): Promise<TurnJobOutcome> {
    const { leases, store } = this.services;
    const { turnId, sessionId, userId } = job.data;
    const log = this.services.logger.child({
      user_id: userId,
      session_id: sessionId,
      turn_id: turnId,
    });
    if (await sendBackIfStillParked(this.services, job, token)) throw new DelayedError();
    // Watch before acquiring: a cancel is then either seen by acquire (flag) or by the watch.
    const abort = new TurnAbort();
    const unwatch = this.services.cancels.watch(turnId, () => abort.fire("cancel"));
    try {
      let acquired = await leases.acquire(sessionId, turnId, randomUUID());
      if (acquired.kind === "waiting" && (await this.dropIfStale(job.data, acquired.blocker))) {
        acquired = await leases.acquire(sessionId, turnId, randomUUID());
      }
      if (acquired.kind === "acquired") {
        return await this.runLeased(job, token, acquired.lease, abort, log);
      }
      const turn = await store.getTurn(turnId);
      if (!turn) return this.unknownTurn(job.data, null);
      if (isTerminal(turn.status)) {
        await this.closeOut(turn, null, log);
        return "already_finished";
      }
      if (acquired.kind === "cancelled") {
        const why = turn.startedAt === null ? CANCELLED_BEFORE_START : CANCELLED_WHILE_PARKED;
        await endTurnOutsideRun(this.services, turn, "cancelled", why);
        log.info("turn cancelled before it started");
        return "cancelled";
      }
      log.debug("session busy; turn waits", { blocker: acquired.blocker });
      await job.moveToDelayed(Date.now() + SESSION_BUSY_RETRY_MS, token);
      void this.services.dispatcher.kick();
      throw new DelayedError();
    } finally {
      unwatch();
    }
  }

  /** A job whose turn is not in the store (deleted, or a foreign job): drop it, free the session. */
  private async unknownTurn(
    { sessionId, turnId, userId }: TurnJobData,
    lease: string | null,
  ): Promise<TurnJobOutcome> {
    this.services.logger.warn("job for unknown turn dropped", { turn_id: turnId });
    await releaseAndWakeNext(this.services, { id: turnId, sessionId, userId }, lease, true);
    return "unknown_turn";
  }

  private async runLeased(
    job: Job<TurnJobData>,
    token: string,
    lease: string,
    abort: TurnAbort,
    log: Logger,
  ): Promise<TurnJobOutcome> {
    const { store, leases, config } = this.services;
    const queued = { id: job.data.turnId, sessionId: job.data.sessionId, userId: job.data.userId };
    this.active.set(queued.id, (why) => abort.fire(why));
    const renewal = setInterval(
      () => {
        leases
          .renew(queued.sessionId, queued.id, lease)
          .then((state) => {
            if (state === "lost") abort.fire("lease_lost");
            if (state === "cancel") abort.fire("cancel");
          })
          .catch((err: Error) => log.warn("lease renewal failed", { error: err.message }));
      },
      Math.floor(config.worker.sessionLeaseTtlMs / 3),
    );
    try {
      const turn = await store.markTurnRunning(queued.id, Date.now());
      if (!turn) {
        const ended = await store.getTurn(queued.id);
        if (!ended) return await this.unknownTurn(job.data, lease);
        await this.closeOut(ended, lease, log);
        return "already_finished";
      }
      // Every line and event of the turn carries the trace of the request that submitted it.
      const traced = turn.traceId ? log.child({ trace_id: turn.traceId }) : log;
      // ... and its spans join that trace, under the caller's span when it named one.
      return await inAttemptSpan(this.services.tracer, turn, (agent) =>
        this.runTurn(job, token, turn, lease, abort, traced, agent),
      );
    } catch (err) {
      if (err instanceof LeaseLostError) return await this.abandon(queued, lease, log);
      throw err;
    } finally {
      clearInterval(renewal);
      this.active.delete(queued.id);
    }
  }

  /** Runs a turn marked running: its loop, then its end (or park, or hand-back). */
  private async runTurn(
    job: Job<TurnJobData>,
    token: string,
    turn: TurnRecord,
    lease: string,
    abort: TurnAbort,
    log: Logger,
    agent: AgentSpan,
  ): Promise<TurnJobOutcome> {
    const { store, leases, config } = this.services;
    const emitter = new TurnEmitter(
      this.services.appender,
      eventTarget(turn),
      config.events,
      lease,
      this.monitor.track(turn),
    );
    try {
      if (turn.attempt === 1) {
        turnMetrics.started(turn.kind, ((turn.startedAt ?? Date.now()) - turn.createdAt) / 1000);
      }
      const recorded =
        turn.attempt > 1 ? await readTurnRecord(this.services, turn) : RecordedTurn.empty;
      emitter.emit("progress", `start.a${turn.attempt}`, {
        stage: turn.attempt > 1 ? "resumed" : "start",
        attempt: turn.attempt,
        model: turn.model,
      });
      log.info("turn started", { attempt: turn.attempt, resumed: !recorded.isEmpty });

      const parkedMs = job.data.parkedMs ?? 0;
      const run = await this.runLoop(turn, recorded, emitter, abort, log, parkedMs, agent.trace);
      if (run.kind === "defer") {
        await parkTurn(this.services, { job, token, turn, lease, emitter }, run.deferral);
        throw new DelayedError();
      }
      if (run.kind === "hand_back") {
        await emitter.flush().catch(() => undefined);
        await leases.release(turn.sessionId, turn.id, lease, true);
        await job.moveToWait(token);
        log.info("turn handed back for another worker", { attempt: turn.attempt });
        throw new WaitingError();
      }
      if (run.kind === "abandon")
        return await this.abandon({ id: turn.id, sessionId: turn.sessionId }, lease, log);
      // A compaction turn's snapshot is its whole effect: saved before the turn ends.
      const ending =
        turn.kind === "compaction"
          ? await keepCompaction(
              store,
              { sessionId: turn.sessionId, loaded: run.loaded, context: run.context, emitter },
              run.ending,
              log,
            )
          : run.ending;
      const finished = await finalizeTurn(store, emitter, turn, ending, run.history);
      if (turn.kind === "agent") {
        await snapshotIfDue(
          store,
          {
            sessionId: turn.sessionId,
            loaded: run.loaded,
            appended: run.history,
            seq: finished.lastSeq ?? emitter.lastSeq,
            compacted: run.context.compacted ? run.context.view() : null,
          },
          config.store.snapshotEveryEvents,
          log,
        );
      }
      turnMetrics.ended(
        turn.kind,
        finished.status,
        finished.stopReason,
        ((finished.finishedAt ?? Date.now()) - (turn.startedAt ?? turn.createdAt)) / 1000,
      );
      log.info("turn finished", {
        status: ending.status,
        stop_reason: ending.stopReason,
        error_code: ending.error?.code,
      });
      agent.finished(ending);
      await releaseAndWakeNext(this.services, turn, lease, true);
      return ending.status;
    } finally {
      emitter.dispose();
    }
  }

  private async runLoop(
    turn: TurnRecord,
    recorded: RecordedTurn,
    emitter: TurnEmitter,
    abort: TurnAbort,
    log: Logger,
    parkedMs: number,
    trace: TurnTrace,
  ): Promise<LoopResult> {
    const { config } = this.services;
    const loaded = await this.services.store.loadContext(turn.sessionId);
    const { loop, context } = buildTurnLoop(this.services, {
      turn,
      recorded,
      emitter,
      abort,
      log,
      loaded,
      workspaceRoot: await this.workspaceOf(turn.userId),
      trace,
    });
    const ended = (ending: Omit<TurnEnding, "usage">): LoopResult => ({
      kind: "ended",
      ending: { ...ending, usage: turnUsage(loop, context) },
      history: loop.completedHistory,
      loaded,
      context,
    });
    try {
      const { answer, stopReason } = await loop.run();
      return ended({ status: "completed", answer, stopReason, error: null });
    } catch (err) {
      if (err instanceof ToolGuardStop && abort.reason === null) {
        const { stopReason, message } = err.trip;
        const error = { code: stopReason, message, retryable: false };
        log.warn("turn stopped by the tool-failure guard", {
          stop_reason: stopReason,
          ...err.trip.meta,
        });
        return ended({ status: "failed", answer: null, stopReason, error });
      }
      const stop = classifyEarlyStop(err, abort.reason);
      if (!stop) {
        log.error("turn failed unexpectedly", {
          error: (err as Error).message,
          stack: (err as Error).stack,
        });
        throw err;
      }
      if (stop.kind === "cancelled") {
        return ended({
          status: "cancelled",
          answer: null,
          stopReason: "cancelled",
          error: stop.error,
        });
      }
      if (stop.kind === "failed") {
        return ended({ status: "failed", answer: null, stopReason: "error", error: stop.error });
      }
      if (stop.kind === "defer") {
        if (parkedMs + stop.deferral.retryAfterMs > config.worker.modelDeferMaxMs) {
          const error = {
            code: "rate_limited",
            message: `model "${turn.model}" stayed over its limits for longer than ${config.worker.modelDeferMaxMs} ms`,
            retryable: true,
          };
          return ended({ status: "failed", answer: null, stopReason: "error", error });
        }
      }
      return stop;
    }
  }

  /** The store says the turn ended; make sure the log says so too and the session moves on. */
  private async closeOut(turn: TurnRecord, lease: string | null, log: Logger): Promise<void> {
    await closeOutEnded(this.services, turn, lease);
    log.info("finished turn closed out", { status: turn.status });
  }

  /**
   * The turn's lease is gone. If another attempt of the turn holds it, that attempt owns the
   * turn and this one just stops. If nobody does (the lease expired while Redis or this worker
   * stalled), throw: BullMQ retries the job, and the retry resumes the turn from its log.
   */
  private async abandon(
    queued: { id: string; sessionId: string },
    lease: string,
    log: Logger,
  ): Promise<TurnJobOutcome> {
    const holder = await this.services.leases.holder(queued.sessionId);
    if (holder !== null && holder !== lease && holder.startsWith(`${queued.id}:`)) {
      log.warn("turn lease lost; another worker owns the turn now");
      return "abandoned";
    }
    log.warn("turn lease lost and not taken over; retrying the turn");
    throw new Error("session lease lost without a new owner; the turn will be retried");
  }

  private workspaceOf(userId: string): Promise<string> {
    let root = this.workspaces.get(userId);
    if (!root) {
      if (this.workspaces.size >= WORKSPACE_CACHE_ENTRIES) this.workspaces.clear();
      root = ensureWorkspace(this.services.config.dataDir, userId);
      root.catch(() => this.workspaces.delete(userId));
      this.workspaces.set(userId, root);
    }
    return root;
  }

  /** True if the blocker is a turn that already ended (or never existed) and was dropped. */
  private async dropIfStale({ sessionId, userId }: TurnJobData, blocker: string): Promise<boolean> {
    const turn = blocker ? await this.services.store.getTurn(blocker) : null;
    if (turn && !isTerminal(turn.status)) return false;
    // A session's turns all belong to its user, so the blocker's slot is this user's too.
    await releaseAndWakeNext(this.services, { id: blocker, sessionId, userId }, null);
    return true;
  }
}
