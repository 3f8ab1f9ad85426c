/**
 * The embedded store: the Store port on one SQLite file that every farm process on the machine
 * opens (API, workers, persister), each with its own connection.
 *
 * Invariants:
 * - every write of more than one row runs in one IMMEDIATE transaction: the write lock is taken
 *   up front, so a transaction never reads a snapshot another process then invalidates; a
 *   write that finds the lock taken is retried asynchronously (`busy-retry.ts`), so concurrent
 *   writers queue without failing and without blocking the event loop;
 * - at most one turn exists per (user, idempotency key) while the key is live, also across
 *   processes: the claim is checked and written inside the same transaction, and the primary
 *   key on `idempotency` backs that up;
 * - better-sqlite3 is synchronous, so each method finishes its SQL before returning; the methods
 *   are async only to satisfy the port (a failure becomes a rejected promise).
 *
 * Sessions and turns are handled here; the event log, snapshots, artifacts, approvals and the
 * audit log each have their own module on the same connection, which this class delegates to.
 */
import Database from "better-sqlite3";
import type { ContextMessage } from "../../context/message.js";
import type { BucketGranularity } from "../buckets.js";
import {
  type ApprovalDecisionInput,
  type ApprovalRecord,
  type ArtifactRecord,
  type AuditEntry,
  type AuditQuery,
  type BucketArchive,
  type BucketCursor,
  type BucketRecord,
  type BucketStatus,
  type CreateTurnResult,
  type IdempotencyClaim,
  isTerminal,
  type NewApproval,
  type NewArtifact,
  type NewAuditEntry,
  type NewTurn,
  type SessionBucket,
  type SessionContext,
  type SessionRecord,
  type SessionSnapshot,
  type SessionUsage,
  type Store,
  type StoredEvent,
  type TurnCursor,
  type TurnOutcome,
  type TurnRecord,
} from "../port.js";
import { historyMessageFromText, sessionFromFields } from "../stored-shapes.js";
import { SqliteApprovals } from "./approvals.js";
import { SqliteArtifacts } from "./artifacts.js";
import { SqliteAudit } from "./audit.js";
import { retryWhileBusy } from "./busy-retry.js";
import { openDatabase } from "./connection.js";
import { SqliteEventBuckets } from "./event-buckets.js";
import { jsonColumn, turnFromRow } from "./rows.js";
import { SqliteSnapshots } from "./snapshots.js";
import { prepareStatements, type Statements } from "./statements.js";

export interface SqliteStoreOptions {
  /** Granularity of new event buckets (existing buckets keep theirs). Default "day". */
  bucketGranularity?: BucketGranularity;
}

type ReplayedTurn = Extract<CreateTurnResult, { kind: "replayed" }>;

export class SqliteStore implements Store {
  private readonly sql: Statements;
  private readonly createTurnTx: Database.Transaction<
    (turn: NewTurn, idempotency: IdempotencyClaim | null) => CreateTurnResult
  >;
  private readonly finishTurnTx: Database.Transaction<
    (id: string, outcome: TurnOutcome, history: ContextMessage[]) => boolean
  >;
  private readonly events: SqliteEventBuckets;
  private readonly snapshots: SqliteSnapshots;
  private readonly artifacts: SqliteArtifacts;
  private readonly approvals: SqliteApprovals;
  private readonly audit: SqliteAudit;
  private readonly appendEventsTx: Database.Transaction<(events: StoredEvent[]) => number>;
  private readonly restoreEventsTx: Database.Transaction<
    (name: string, events: StoredEvent[]) => number
  >;
  private readonly completeArchiveTx: Database.Transaction<
    (name: string, archive: BucketArchive) => BucketRecord | null
  >;
  private readonly saveSnapshotTx: Database.Transaction<(snapshot: SessionSnapshot) => boolean>;
  private readonly loadContextTx: Database.Transaction<(sessionId: string) => SessionContext>;

  /** Opens (creating if needed) the store file at `filePath`. */
  static open(filePath: string, options: SqliteStoreOptions = {}): SqliteStore {
    const granularity = options.bucketGranularity ?? "day";
    return new SqliteStore(openDatabase(filePath, granularity), granularity);
  }

  private constructor(
    private readonly db: Database.Database,
    granularity: BucketGranularity,
  ) {
    this.sql = prepareStatements(db);
    this.events = new SqliteEventBuckets(db, granularity);
    this.snapshots = new SqliteSnapshots(db, this.sql);
    this.artifacts = new SqliteArtifacts(db);
    this.approvals = new SqliteApprovals(db);
    this.audit = new SqliteAudit(db);
    this.createTurnTx = db.transaction((turn, idempotency) => this.createTurnIn(turn, idempotency));
    this.finishTurnTx = db.transaction((id, outcome, history) =>
      this.finishTurnIn(id, outcome, history),
    );
    this.appendEventsTx = db.transaction((events) => this.events.appendIn(events, Date.now()));
    this.restoreEventsTx = db.transaction((name, events) => this.events.restoreIn(name, events));
    this.completeArchiveTx = db.transaction((name, archive) =>
      this.events.completeArchiveIn(name, archive),
    );
    this.saveSnapshotTx = db.transaction((snapshot) => this.snapshots.saveIn(snapshot));
    this.loadContextTx = db.transaction((sessionId) => this.snapshots.loadIn(sessionId));
  }

  async ping(): Promise<void> {
    this.sql.ping.get();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    const row = this.sql.getSession.get(id);
    return row === undefined ? null : sessionFromFields(row);
  }

  async createTurn(turn: NewTurn, idempotency: IdempotencyClaim | null): Promise<CreateTurnResult> {
    return retryWhileBusy(() => {
      try {
        return this.createTurnTx.immediate(turn, idempotency);
      } catch (err) {
        // The IMMEDIATE transaction already serialises competing claims, so the check inside it
        // sees the winner; should a claim still collide on the key, answer as the winner would.
        if (idempotency !== null && isIdempotencyKeyConflict(err)) {
          const replay = this.liveReplay(turn.userId, idempotency.key, turn.createdAt);
          if (replay !== null) return replay;
        }
        throw err;
      }
    });
  }

  async findIdempotentTurn(
    userId: string,
    key: string,
    now: number,
  ): Promise<{ turn: TurnRecord; requestHash: string } | null> {
    return this.liveReplay(userId, key, now);
  }

  async getTurn(id: string): Promise<TurnRecord | null> {
    const row = this.sql.getTurn.get(id);
    return row === undefined ? null : turnFromRow(row);
  }

  async setTurnFirstSeq(id: string, seq: number): Promise<void> {
    await retryWhileBusy(() => this.sql.setTurnFirstSeq.run(seq, id));
  }

  async markTurnRunning(id: string, now: number): Promise<TurnRecord | null> {
    const row = await retryWhileBusy(() => this.sql.markTurnRunning.get(now, id));
    return row === undefined ? null : turnFromRow(row);
  }

  async finishTurn(id: string, outcome: TurnOutcome, history: ContextMessage[]): Promise<boolean> {
    if (!isTerminal(outcome.status)) {
      throw new Error(`finishTurn needs a terminal status, got "${outcome.status}"`);
    }
    return retryWhileBusy(() => this.finishTurnTx.immediate(id, outcome, history));
  }

  async listSessionTurns(sessionId: string, limit: number): Promise<TurnRecord[]> {
    return this.sql.listSessionTurns.all(sessionId, limit).map(turnFromRow);
  }

  async sessionUsage(sessionId: string): Promise<SessionUsage> {
    return this.sql.sessionUsage.get(sessionId) as SessionUsage;
  }

  async listStaleTurns(before: number, limit: number, after?: TurnCursor): Promise<TurnRecord[]> {
    const rows = this.sql.listStaleTurns.all(
      before,
      after?.createdAt ?? Number.MIN_SAFE_INTEGER,
      after?.id ?? "",
      limit,
    );
    return rows.map(turnFromRow);
  }

  async appendEvents(events: StoredEvent[]): Promise<number> {
    return events.length === 0 ? 0 : retryWhileBusy(() => this.appendEventsTx.immediate(events));
  }

  async readEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    return this.events.read(sessionId, afterSeq, limit);
  }

  async maxSeq(sessionId: string): Promise<number> {
    return this.events.maxSeq(sessionId);
  }

  async listSessionBuckets(sessionId: string): Promise<SessionBucket[]> {
    return this.events.sessionBuckets(sessionId);
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return this.events.listBuckets();
  }

  async getBucket(name: string): Promise<BucketRecord | null> {
    return this.events.getBucket(name);
  }

  async setBucketStatus(
    name: string,
    from: BucketStatus,
    to: BucketStatus,
    now: number,
  ): Promise<BucketRecord | null> {
    return retryWhileBusy(() =>
      this.db.transaction(() => this.events.setStatus(name, from, to, now)).immediate(),
    );
  }

  async readBucketEvents(
    name: string,
    after: BucketCursor | null,
    limit: number,
  ): Promise<StoredEvent[]> {
    return this.events.readBucket(name, after, limit);
  }

  async completeArchive(name: string, archive: BucketArchive): Promise<BucketRecord | null> {
    return retryWhileBusy(() => this.completeArchiveTx.immediate(name, archive));
  }

  async restoreEvents(name: string, events: StoredEvent[]): Promise<number> {
    return events.length === 0
      ? 0
      : retryWhileBusy(() => this.restoreEventsTx.immediate(name, events));
  }

  async saveSnapshot(snapshot: SessionSnapshot): Promise<boolean> {
    return retryWhileBusy(() => this.saveSnapshotTx.immediate(snapshot));
  }

  async latestSnapshot(sessionId: string): Promise<SessionSnapshot | null> {
    return this.snapshots.latest(sessionId);
  }

  async loadContext(sessionId: string): Promise<SessionContext> {
    return this.loadContextTx.deferred(sessionId);
  }

  async putArtifact(artifact: NewArtifact, content: Buffer): Promise<ArtifactRecord> {
    return retryWhileBusy(() => this.artifacts.put(artifact, content));
  }

  async getArtifact(id: string): Promise<{ record: ArtifactRecord; content: Buffer } | null> {
    return this.artifacts.get(id);
  }

  async listArtifacts(sessionId: string): Promise<ArtifactRecord[]> {
    return this.artifacts.list(sessionId);
  }

  async createApproval(approval: NewApproval): Promise<ApprovalRecord> {
    return retryWhileBusy(() => this.approvals.create(approval));
  }

  async getApproval(id: string): Promise<ApprovalRecord | null> {
    return this.approvals.get(id);
  }

  async decideApproval(
    id: string,
    decision: ApprovalDecisionInput,
  ): Promise<{ changed: boolean; approval: ApprovalRecord } | null> {
    return retryWhileBusy(() => this.approvals.decide(id, decision));
  }

  async listTurnApprovals(turnId: string): Promise<ApprovalRecord[]> {
    return this.approvals.listTurn(turnId);
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    return retryWhileBusy(() => this.audit.append(entry));
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.audit.list(query);
  }

  async loadHistory(sessionId: string): Promise<ContextMessage[]> {
    return this.sql.historyFrom.all(sessionId, 0).map(historyMessageFromText);
  }

  async purgeExpiredIdempotency(now: number): Promise<number> {
    return (await retryWhileBusy(() => this.sql.purgeExpiredIdempotency.run(now))).changes;
  }

  /** Body of the createTurn transaction; `turn.createdAt` is the "now" keys expire against. */
  private createTurnIn(turn: NewTurn, idempotency: IdempotencyClaim | null): CreateTurnResult {
    if (idempotency !== null) {
      const replay = this.liveReplay(turn.userId, idempotency.key, turn.createdAt);
      if (replay !== null) return replay;
      // Whatever record is left under the key has expired: the key is free again.
      this.sql.deleteIdempotency.run(turn.userId, idempotency.key);
    }

    const session = this.sql.getSession.get(turn.sessionId);
    if (session !== undefined && session.user_id !== turn.userId) {
      return { kind: "session_forbidden" };
    }
    if (session === undefined) {
      this.sql.insertSession.run(turn.sessionId, turn.userId, turn.createdAt, turn.createdAt);
    } else {
      this.sql.touchSession.run(turn.createdAt, turn.sessionId);
    }

    this.sql.insertTurn.run({
      id: turn.id,
      sessionId: turn.sessionId,
      userId: turn.userId,
      kind: turn.kind ?? "agent",
      traceId: turn.traceId ?? null,
      traceParent: turn.traceParent ?? null,
      input: turn.input,
      model: turn.model,
      tools: JSON.stringify(turn.tools),
      metadata: jsonColumn(turn.metadata),
      idempotencyKey: idempotency?.key ?? null,
      createdAt: turn.createdAt,
      // A turn that creates its session is the first to write to its log.
      firstSeq: session === undefined ? 1 : null,
    });
    if (idempotency !== null) {
      this.sql.insertIdempotency.run(
        turn.userId,
        idempotency.key,
        idempotency.requestHash,
        turn.id,
        turn.createdAt,
        idempotency.expiresAt,
      );
    }
    return { kind: "created", turn: this.requireTurn(turn.id), sessionCreated: !session };
  }

  /** The answer for a key that is still live at `now`, or null when absent or expired. */
  private liveReplay(userId: string, key: string, now: number): ReplayedTurn | null {
    const record = this.sql.getIdempotency.get(userId, key);
    if (record === undefined || record.expires_at <= now) return null;
    return {
      kind: "replayed",
      turn: this.requireTurn(record.turn_id),
      requestHash: record.request_hash,
    };
  }

  private finishTurnIn(id: string, outcome: TurnOutcome, history: ContextMessage[]): boolean {
    const ended = this.sql.finishTurn.get({
      id,
      status: outcome.status,
      finishedAt: outcome.finishedAt,
      answer: outcome.answer,
      stopReason: outcome.stopReason,
      usage: jsonColumn(outcome.usage),
      error: jsonColumn(outcome.error),
    });
    if (ended === undefined) return false;

    const sessionId = ended.session_id;
    let idx = this.sql.historyLength.get(sessionId) ?? 0;
    for (const message of history) {
      this.sql.insertHistory.run(sessionId, idx, id, JSON.stringify(message));
      idx += 1;
    }
    this.sql.touchSession.run(outcome.finishedAt, sessionId);
    return true;
  }

  private requireTurn(id: string): TurnRecord {
    const row = this.sql.getTurn.get(id);
    // Turns are never deleted and the idempotency record references its turn by foreign key.
    if (row === undefined) throw new Error(`turn ${id} is missing from the SQLite store`);
    return turnFromRow(row);
  }
}

function isIdempotencyKeyConflict(err: unknown): boolean {
  return (
    err instanceof Database.SqliteError &&
    err.code === "SQLITE_CONSTRAINT_PRIMARYKEY" &&
    err.message.includes("idempotency.")
  );
}
