/**
 * Sessions, turns and submit idempotency records on MongoDB (`sessions`, `turns`,
 * `idempotency`), plus ending a turn with its history.
 *
 * Invariants:
 * - the bodies that write several documents (`createIn`, `finishIn`) run inside the caller's
 *   transaction and pass its session to every operation, so they commit whole or not at all;
 * - a status change is one conditional update (`status ∈ non-terminal`), so two processes
 *   racing to move the same turn cannot both succeed;
 * - an idempotency record counts as expired once `expires_at <= now`, whether or not the TTL
 *   index has removed it yet, both when a create meets it and when the purge removes it;
 * - sessions are only ever touched forward in time (`$max updated_at`).
 */
import type { ClientSession, QueryFilter } from "mongoose";
import type { ContextMessage } from "../../context/message.js";
import {
  type CreateTurnResult,
  type IdempotencyClaim,
  isTerminal,
  type NewTurn,
  type SessionRecord,
  type SessionUsage,
  TURN_STATUSES,
  type TurnCursor,
  type TurnOutcome,
  type TurnRecord,
} from "../port.js";
import {
  type IdempotencyDoc,
  jsonText,
  type SessionDoc,
  sessionFromDoc,
  type TurnDoc,
  turnFromDoc,
} from "./documents.js";
import { appendHistory, loadHistoryFrom } from "./history.js";
import type { MongoModels } from "./models.js";

const NON_TERMINAL = TURN_STATUSES.filter((status) => !isTerminal(status));

type ReplayedTurn = Extract<CreateTurnResult, { kind: "replayed" }>;

export class MongoTurns {
  constructor(private readonly models: MongoModels) {}

  async getSession(id: string): Promise<SessionRecord | null> {
    const doc = await this.models.sessions.findById(id).lean<SessionDoc>();
    return doc === null ? null : sessionFromDoc(doc);
  }

  async getTurn(id: string, session: ClientSession | null = null): Promise<TurnRecord | null> {
    const doc = await this.models.turns.findById(id).session(session).lean<TurnDoc>();
    return doc === null ? null : turnFromDoc(doc);
  }

  /** Body of the createTurn transaction; `turn.createdAt` is the "now" keys expire against. */
  async createIn(
    turn: NewTurn,
    idempotency: IdempotencyClaim | null,
    session: ClientSession,
  ): Promise<CreateTurnResult> {
    if (idempotency !== null) {
      const replay = await this.liveReplay(turn.userId, idempotency.key, turn.createdAt, session);
      if (replay !== null) return replay;
      // Whatever record is left under the key has expired: the key is free again.
      await this.models.idempotency.deleteOne(
        { user_id: turn.userId, key: idempotency.key },
        { session },
      );
    }

    const existing = await this.models.sessions
      .findById(turn.sessionId)
      .session(session)
      .lean<SessionDoc>();
    if (existing !== null && existing.user_id !== turn.userId) return { kind: "session_forbidden" };
    if (existing === null) {
      const doc: SessionDoc = {
        _id: turn.sessionId,
        user_id: turn.userId,
        created_at: turn.createdAt,
        updated_at: turn.createdAt,
      };
      await this.models.sessions.insertMany([doc], { session, lean: true });
    } else {
      await this.touchSession(turn.sessionId, turn.createdAt, session);
    }

    const doc: TurnDoc = {
      _id: turn.id,
      session_id: turn.sessionId,
      user_id: turn.userId,
      status: "queued",
      kind: turn.kind ?? "agent",
      trace_id: turn.traceId ?? null,
      trace_parent: turn.traceParent ?? null,
      input: turn.input,
      model: turn.model,
      tools: [...turn.tools],
      metadata: jsonText(turn.metadata),
      idempotency_key: idempotency?.key ?? null,
      created_at: turn.createdAt,
      started_at: null,
      finished_at: null,
      attempt: 0,
      answer: null,
      stop_reason: null,
      usage: null,
      error: null,
      // A turn that creates its session is the first to write to its log.
      first_seq: existing === null ? 1 : null,
      last_seq: null,
    };
    await this.models.turns.insertMany([doc], { session, lean: true });
    if (idempotency !== null) {
      const record: IdempotencyDoc = {
        user_id: turn.userId,
        key: idempotency.key,
        request_hash: idempotency.requestHash,
        turn_id: turn.id,
        created_at: turn.createdAt,
        expires_at: idempotency.expiresAt,
        purge_at: new Date(idempotency.expiresAt),
      };
      await this.models.idempotency.insertMany([record], { session, lean: true });
    }
    // The document as written, decoded the way a later read decodes it.
    return { kind: "created", turn: turnFromDoc(doc), sessionCreated: existing === null };
  }

  /** The answer for a key that is still live at `now`, or null when absent or expired. */
  async liveReplay(
    userId: string,
    key: string,
    now: number,
    session: ClientSession | null = null,
  ): Promise<ReplayedTurn | null> {
    const record = await this.models.idempotency
      .findOne({ user_id: userId, key })
      .session(session)
      .lean<IdempotencyDoc>();
    if (record === null || record.expires_at <= now) return null;
    const turn = await this.getTurn(record.turn_id, session);
    // Turns are never deleted, and a record is written in the transaction that writes its turn.
    if (turn === null) throw new Error(`turn ${record.turn_id} is missing from the MongoDB store`);
    return { kind: "replayed", turn, requestHash: record.request_hash };
  }

  async setFirstSeq(id: string, seq: number): Promise<void> {
    await this.models.turns.updateOne({ _id: id }, { $set: { first_seq: seq } });
  }

  /** Non-terminal → running with attempt + 1; startedAt only set by the first start. */
  async markRunning(id: string, now: number): Promise<TurnRecord | null> {
    const doc = await this.models.turns
      .findOneAndUpdate(
        { _id: id, status: { $in: NON_TERMINAL } },
        [
          {
            $set: {
              status: { $literal: "running" },
              attempt: { $add: ["$attempt", 1] },
              started_at: { $ifNull: ["$started_at", now] },
            },
          },
        ],
        { returnDocument: "after", updatePipeline: true },
      )
      .lean<TurnDoc>();
    return doc === null ? null : turnFromDoc(doc);
  }

  /** Body of the finishTurn transaction: false (nothing written) if the turn is terminal. */
  async finishIn(
    id: string,
    outcome: TurnOutcome,
    history: ContextMessage[],
    session: ClientSession,
  ): Promise<boolean> {
    const ended = await this.models.turns
      .findOneAndUpdate(
        { _id: id, status: { $in: NON_TERMINAL } },
        {
          $set: {
            status: outcome.status,
            finished_at: outcome.finishedAt,
            answer: outcome.answer,
            stop_reason: outcome.stopReason,
            usage: outcome.usage,
            error: outcome.error,
          },
        },
        { returnDocument: "after", projection: { session_id: 1 }, session },
      )
      .lean<Pick<TurnDoc, "session_id">>();
    if (ended === null) return false;
    await appendHistory(this.models, ended.session_id, id, history, session);
    await this.touchSession(ended.session_id, outcome.finishedAt, session);
    return true;
  }

  async listSession(sessionId: string, limit: number): Promise<TurnRecord[]> {
    if (limit <= 0) return [];
    const docs = await this.models.turns
      .find({ session_id: sessionId })
      .sort({ created_at: -1, _id: -1 })
      .limit(limit)
      .lean<TurnDoc[]>();
    return docs.map(turnFromDoc);
  }

  /** Sums of the session's recorded turn usage, computed by the server. */
  async sessionUsage(sessionId: string): Promise<SessionUsage> {
    const [sums] = await this.models.turns.aggregate<SessionUsage>([
      { $match: { session_id: sessionId, usage: { $type: "object" } } },
      {
        $group: {
          _id: null,
          input_tokens: { $sum: "$usage.input_tokens" },
          output_tokens: { $sum: "$usage.output_tokens" },
          total_tokens: { $sum: "$usage.total_tokens" },
          turns: { $sum: 1 },
        },
      },
      { $project: { _id: 0 } },
    ]);
    return sums ?? { input_tokens: 0, output_tokens: 0, total_tokens: 0, turns: 0 };
  }

  /** Non-terminal turns created before `before`, in (createdAt, id) order after `after`. */
  async listStale(before: number, limit: number, after?: TurnCursor): Promise<TurnRecord[]> {
    if (limit <= 0) return [];
    const filter: QueryFilter<TurnDoc> = {
      status: { $in: NON_TERMINAL },
      created_at: { $lt: before },
    };
    if (after !== undefined) {
      filter.$or = [
        { created_at: { $gt: after.createdAt } },
        { created_at: after.createdAt, _id: { $gt: after.id } },
      ];
    }
    const docs = await this.models.turns
      .find(filter)
      .sort({ created_at: 1, _id: 1 })
      .limit(limit)
      .lean<TurnDoc[]>();
    return docs.map(turnFromDoc);
  }

  /** The session's whole history, oldest first. */
  async loadHistory(sessionId: string): Promise<ContextMessage[]> {
    return loadHistoryFrom(this.models, sessionId, 0);
  }

  async purgeExpiredIdempotency(now: number): Promise<number> {
    const result = await this.models.idempotency.deleteMany({ expires_at: { $lte: now } });
    return result.deletedCount;
  }

  private async touchSession(id: string, at: number, session: ClientSession): Promise<void> {
    await this.models.sessions.updateOne({ _id: id }, { $max: { updated_at: at } }, { session });
  }
}
