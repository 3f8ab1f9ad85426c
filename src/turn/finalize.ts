/**
 * Ends a turn: records its outcome in the store, then announces it with `turn_terminal`.
 *
 * Invariants:
 * - the store is written first, so a client that sees `turn_terminal` and then reads the turn
 *   sees its final state; if the process dies in between, `announceTerminal` (run again on
 *   recovery from the stored record) emits the same closing events;
 * - `turn_terminal` has the fixed step key `terminal`: a turn has at most one, and it is the
 *   turn's last event;
 * - the store keeps the first outcome: finishing an already finished turn changes nothing.
 */
import type { ContextMessage } from "../context/message.js";
import type { TurnEmitter } from "../events/turn-emitter.js";
import type { Store, TerminalTurnStatus, TurnError, TurnRecord, TurnUsage } from "../store/port.js";

export interface TurnEnding {
  status: TerminalTurnStatus;
  answer: string | null;
  stopReason: string | null;
  usage: TurnUsage | null;
  error: TurnError | null;
}

/** Stores the outcome (the first one wins), then announces whatever outcome the store holds. */
export async function finalizeTurn(
  store: Store,
  emitter: TurnEmitter,
  turn: TurnRecord,
  ending: TurnEnding,
  history: ContextMessage[],
): Promise<TurnRecord> {
  await emitter.flush();
  await store.finishTurn(
    turn.id,
    {
      status: ending.status,
      finishedAt: Date.now(),
      answer: ending.answer,
      stopReason: ending.stopReason,
      usage: ending.usage,
      error: ending.error,
    },
    history,
  );
  const stored = await store.getTurn(turn.id);
  if (!stored) throw new Error(`turn ${turn.id} vanished from the store`);
  return announceTerminal(emitter, stored);
}

/**
 * Emits the closing events of a turn the store records as ended: `round_usage` and `final`, or
 * `error`, then `turn_terminal`. All derive from the stored record and carry fixed step keys, so
 * running this twice (recovery, or two parties racing to end a turn) appends them once.
 */
export async function announceTerminal(
  emitter: TurnEmitter,
  turn: TurnRecord,
): Promise<TurnRecord> {
  const usage = turn.usage;
  if (turn.status === "completed") {
    if (usage) {
      emitter.emit("round_usage", "round_usage", {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        total_tokens: usage.total_tokens,
        context_occupancy_tokens: usage.context_tokens,
        request_consumed_tokens: usage.total_tokens,
        ...(usage.context_window_tokens !== undefined
          ? { context_window_tokens: usage.context_window_tokens }
          : {}),
        ...(usage.model_calls !== undefined ? { model_calls: usage.model_calls } : {}),
        ...(usage.compaction_tokens !== undefined
          ? { compaction_tokens: usage.compaction_tokens }
          : {}),
      });
    }
    emitter.emit("final", "final", {
      answer: turn.answer ?? "",
      stop_reason: turn.stopReason,
      usage,
    });
  } else if (turn.error) {
    emitter.emit("error", "error", { ...turn.error });
  }
  const seq = await emitter.emitTerminal("terminal", terminalData(turn));
  return { ...turn, lastSeq: seq };
}

function terminalData(turn: TurnRecord): Record<string, unknown> {
  return {
    status: turn.status,
    retryable: turn.error?.retryable ?? false,
    ...(turn.stopReason ? { stop_reason: turn.stopReason } : {}),
    ...(turn.usage ? { usage: turn.usage } : {}),
    ...(turn.error ? { error: turn.error } : {}),
  };
}
