/**
 * Each session's model-visible history on MongoDB (`session_history`): items numbered 0, 1, 2…
 * per session, one document each.
 *
 * Invariants:
 * - items are only ever appended, numbered from the session's current length, inside the
 *   caller's transaction; the unique (session_id, idx) index makes two transactions that
 *   numbered the same slot conflict, so one retries and numbers after the other;
 * - items are never changed or removed, which is what lets a snapshot stand for a prefix.
 */
import type { ClientSession } from "mongoose";
import type { ContextMessage } from "../../context/message.js";
import { type HistoryDoc, historyMessageFromDoc } from "./documents.js";
import type { MongoModels } from "./models.js";

/** The session's history length (its next item number); `session` is the transaction, if any. */
export async function historyLength(
  models: MongoModels,
  sessionId: string,
  session: ClientSession | null,
): Promise<number> {
  const last = await models.history
    .findOne({ session_id: sessionId }, { idx: 1 })
    .sort({ idx: -1 })
    .session(session)
    .lean<Pick<HistoryDoc, "idx">>();
  return last === null ? 0 : last.idx + 1;
}

/** Appends `messages` to the session's history inside `session`'s transaction. */
export async function appendHistory(
  models: MongoModels,
  sessionId: string,
  turnId: string,
  messages: ContextMessage[],
  session: ClientSession,
): Promise<void> {
  if (messages.length === 0) return;
  const first = await historyLength(models, sessionId, session);
  const docs: HistoryDoc[] = messages.map((message, i) => ({
    session_id: sessionId,
    idx: first + i,
    turn_id: turnId,
    message: JSON.stringify(message),
  }));
  await models.history.insertMany(docs, { session, lean: true });
}

/** The session's history items from `fromIdx` on, oldest first. */
export async function loadHistoryFrom(
  models: MongoModels,
  sessionId: string,
  fromIdx: number,
): Promise<ContextMessage[]> {
  const filter =
    fromIdx > 0 ? { session_id: sessionId, idx: { $gte: fromIdx } } : { session_id: sessionId };
  const docs = await models.history
    .find(filter, { message: 1 })
    .sort({ idx: 1 })
    .lean<Pick<HistoryDoc, "message">[]>();
  return docs.map(historyMessageFromDoc);
}
