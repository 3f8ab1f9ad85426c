/**
 * Session snapshots on MongoDB (`session_snapshots`), and loading a session's context from the
 * latest snapshot plus the history items after it.
 *
 * Invariants:
 * - a snapshot is saved only if it covers exactly the session's current history, checked in the
 *   transaction that writes it, so snapshot + tail is always the history with nothing skipped
 *   or repeated; the same (session, historyLength) saved twice keeps the first (upsert that
 *   only sets fields on insert);
 * - only the latest SNAPSHOTS_KEPT_PER_SESSION snapshots of a session are kept;
 * - loading needs no transaction: history items are append-only and never change, so whatever
 *   snapshot is read, the items from its `historyLength` on complete it exactly.
 */
import type { ClientSession } from "mongoose";
import type { SessionContext, SessionSnapshot } from "../ports/snapshots.js";
import { sessionContextOf, snapshotFromFields } from "../stored-shapes.js";
import type { SnapshotDoc } from "./documents.js";
import { historyLength, loadHistoryFrom } from "./history.js";
import type { MongoModels } from "./models.js";

/** Older snapshots than the newest few are pruned: loading only ever reads the latest. */
export const SNAPSHOTS_KEPT_PER_SESSION = 2;

export class MongoSnapshots {
  constructor(private readonly models: MongoModels) {}

  /** Body of the save transaction. */
  async saveIn(snapshot: SessionSnapshot, session: ClientSession): Promise<boolean> {
    const current = await historyLength(this.models, snapshot.sessionId, session);
    if (current !== snapshot.historyLength) return false;
    const fields = {
      seq: snapshot.seq,
      reason: snapshot.reason,
      messages: JSON.stringify(snapshot.messages),
      created_at: snapshot.createdAt,
    };
    await this.models.snapshots.updateOne(
      { session_id: snapshot.sessionId, history_length: snapshot.historyLength },
      // A compaction replaces what was saved at the same point; any other snapshot keeps it.
      snapshot.reason === "compaction" ? { $set: fields } : { $setOnInsert: fields },
      { upsert: true, session },
    );
    await this.prune(snapshot.sessionId, session);
    return true;
  }

  async latest(sessionId: string): Promise<SessionSnapshot | null> {
    const doc = await this.models.snapshots
      .findOne({ session_id: sessionId })
      .sort({ history_length: -1 })
      .lean<SnapshotDoc>();
    return doc === null ? null : snapshotFromFields(doc);
  }

  async load(sessionId: string): Promise<SessionContext> {
    const snapshot = await this.latest(sessionId);
    const tail = await loadHistoryFrom(this.models, sessionId, snapshot?.historyLength ?? 0);
    return sessionContextOf(snapshot, tail);
  }

  /** Deletes the session's snapshots older than the newest SNAPSHOTS_KEPT_PER_SESSION. */
  private async prune(sessionId: string, session: ClientSession): Promise<void> {
    const [oldestKept] = await this.models.snapshots
      .find({ session_id: sessionId }, { history_length: 1 })
      .sort({ history_length: -1 })
      .skip(SNAPSHOTS_KEPT_PER_SESSION - 1)
      .limit(1)
      .session(session)
      .lean<Pick<SnapshotDoc, "history_length">[]>();
    if (oldestKept === undefined) return;
    await this.models.snapshots.deleteMany(
      { session_id: sessionId, history_length: { $lt: oldestKept.history_length } },
      { session },
    );
  }
}
