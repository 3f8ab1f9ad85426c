/**
 * Port part: session snapshots — the session's model-visible context at one point, so loading a
 * session reads one snapshot plus the history items after it, never the whole history.
 *
 * Contract:
 * - a snapshot covers the first `historyLength` items of the session's history; `saveSnapshot`
 *   refuses (returns false, writes nothing) a snapshot whose `historyLength` is not the
 *   session's current history length, so a snapshot never skips or repeats an item;
 * - saving the same (session, historyLength) twice keeps the first, unless the later one is a
 *   `compaction` snapshot: that one replaces it (a compaction on demand adds no history item,
 *   and its context must win over the checkpoint it compacted; a replayed compaction writes the
 *   same context again);
 * - `loadContext` = the latest snapshot's messages + the history items after it; with no
 *   snapshot it is the whole history (the same as `loadHistory`).
 */
import type { ContextMessage } from "../../context/message.js";

export const SNAPSHOT_REASONS = ["compaction", "interval"] as const;
export type SnapshotReason = (typeof SNAPSHOT_REASONS)[number];

export interface SessionSnapshot {
  sessionId: string;
  /** History items the snapshot stands for. */
  historyLength: number;
  /** Highest event seq the session had when the snapshot was taken. */
  seq: number;
  reason: SnapshotReason;
  /** The context the model sees in place of those items (after a compaction, fewer of them). */
  messages: ContextMessage[];
  createdAt: number;
}

export interface SessionContext {
  messages: ContextMessage[];
  /** The session's history length: the `historyLength` a snapshot of this context would carry. */
  historyLength: number;
  /** The snapshot the context was built on, if any. */
  snapshot: Pick<SessionSnapshot, "historyLength" | "seq" | "reason" | "createdAt"> | null;
}

export interface SnapshotStore {
  saveSnapshot(snapshot: SessionSnapshot): Promise<boolean>;
  latestSnapshot(sessionId: string): Promise<SessionSnapshot | null>;
  loadContext(sessionId: string): Promise<SessionContext>;
}
