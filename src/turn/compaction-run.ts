/**
 * The run of a `compaction` turn (POST /v1/sessions/{id}/compaction): compacts the session's
 * context once, on demand, with the model's hand-off summary (falling back to trimming like any
 * compaction), so the session's next turns start from the compacted context.
 *
 * Invariants:
 * - it adds nothing to the session's history: a compaction changes what the model sees, and
 *   the turn's end saves that as the session's snapshot (context-snapshot.ts);
 * - it runs under the session lease like any turn, so on a busy session it waits for the
 *   running turn and compacts what that turn left;
 * - a resumed attempt replays the recorded compaction instead of summarising again.
 */
import type { ContextMessage } from "../context/message.js";
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
    const result = await this.context.compactOnDemand();
    if (this.signal.aborted) throw new TurnAborted();
    // Occupancy after a compaction is an estimate until a model reads the context again.
    this.usage.context_tokens = result?.tokensAfter ?? this.context.viewTokens();
    return { answer: "", stopReason: result ? "compacted" : "nothing_to_compact" };
  }
}
