/**
 * The run of a `compaction` turn (POST /v1/sessions/{id}/compaction): compacts the session's
 * context once, on demand, with the model's hand-off summary (falling back to trimming like any
 * compaction), so the session's next turns start from the compacted context.
 *
 * Invariants:
 * - it adds nothing to the session's history: a compaction changes what the model sees, and
 *   its only effect is the session's snapshot — saved before the turn is recorded as ended
 *   (`keepCompaction`), so a turn reported `compacted` always left one, and a turn that could
 *   not save it fails (retryable) instead;
 * - once the compaction is done the turn completes, even if a cancel arrives right then: its
 *   outcome matches its effect;
 * - it runs under the session lease like any turn, so on a busy session it waits for the
 *   running turn and compacts what that turn left;
 * - a resumed attempt replays the recorded compaction instead of summarising again.
 */
import type { ContextMessage } from "../context/message.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { Logger } from "../obs/logger.js";
import type { SessionContext, Store } from "../store/port.js";
import { snapshotIfDue } from "./context-snapshot.js";
import type { TurnEnding } from "./finalize.js";
import type { TurnContext } from "./turn-context.js";
import { noRoundsUsage, TurnAborted, type TurnAnswer, type TurnRunner } from "./turn-loop.js";

export class CompactionRun implements TurnRunner {
  readonly completedHistory: ContextMessage[] = [];
  readonly usage = noRoundsUsage();

  constructor(
    private readonly context: TurnContext,
    private readonly signal: AbortSignal,
  ) {}

  async run(): Promise<TurnAnswer> {
    if (this.signal.aborted) throw new TurnAborted();
    const result = await this.context.compactOnDemand();
    // Occupancy after a compaction is an estimate until a model reads the context again.
    this.usage.context_tokens = result?.tokensAfter ?? this.context.viewTokens();
    return { answer: "", stopReason: result ? "compacted" : "nothing_to_compact" };
  }
}

/**
 * Saves a completed compaction's result as the session's snapshot, before the turn is recorded
 * as ended; the ending becomes a retryable failure when the snapshot could not be saved.
 */
export async function keepCompaction(
  store: Store,
  run: { sessionId: string; loaded: SessionContext; context: TurnContext; emitter: TurnEmitter },
  ending: TurnEnding,
  log: Logger,
): Promise<TurnEnding> {
  if (ending.status !== "completed" || !run.context.compacted) return ending;
  await run.emitter.flush();
  const saved = await snapshotIfDue(
    store,
    {
      sessionId: run.sessionId,
      loaded: run.loaded,
      appended: [],
      seq: run.emitter.lastSeq,
      compacted: run.context.view(),
    },
    Number.POSITIVE_INFINITY,
    log,
  );
  if (saved) return ending;
  return {
    ...ending,
    status: "failed",
    answer: null,
    stopReason: "error",
    error: {
      code: "compaction_not_saved",
      message: "the compacted context could not be saved; the session is unchanged, try again",
      retryable: true,
    },
  };
}
