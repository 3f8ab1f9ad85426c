/**
 * When a turn ends, saves a snapshot of its session's context if the turn compacted it (the
 * compacted view must outlive the turn: it is what later turns see) or if enough events passed
 * since the last one, so the next turn loads one snapshot plus a short tail instead of the
 * whole history.
 *
 * Invariants:
 * - the snapshot is the context the turn loaded plus the items the turn appended, saved while
 *   the turn still holds its session lease (no other turn of the session can append between);
 *   the store refuses it anyway unless it covers exactly the stored history;
 * - a failed save never fails the turn: the next turn simply loads more history.
 */
import type { ContextMessage } from "../context/message.js";
import type { Logger } from "../obs/logger.js";
import type { SessionContext, Store } from "../store/port.js";

export interface SnapshotPoint {
  sessionId: string;
  /** What the turn loaded when it started. */
  loaded: SessionContext;
  /** The items the turn appended to the history. */
  appended: ContextMessage[];
  /** The session's head seq when the turn ended. */
  seq: number;
  /** The context as the model saw it at the end, when the turn compacted it. */
  compacted: ContextMessage[] | null;
}

export async function snapshotIfDue(
  store: Store,
  point: SnapshotPoint,
  everyEvents: number,
  log: Logger,
): Promise<boolean> {
  const since = point.seq - (point.loaded.snapshot?.seq ?? 0);
  if (point.compacted === null && since < everyEvents) return false;
  const reason = point.compacted === null ? "interval" : "compaction";
  try {
    const saved = await store.saveSnapshot({
      sessionId: point.sessionId,
      historyLength: point.loaded.historyLength + point.appended.length,
      seq: point.seq,
      reason,
      messages: point.compacted ?? [...point.loaded.messages, ...point.appended],
      createdAt: Date.now(),
    });
    if (saved) log.info("context snapshot saved", { seq: point.seq, events_since: since, reason });
    return saved;
  } catch (err) {
    log.warn("context snapshot failed; the next turn loads more history", {
      error: (err as Error).message,
    });
    return false;
  }
}
