/**
 * The production store: the Store port on MongoDB through mongoose, one connection (one driver
 * pool) per handle; every farm process (API, workers, persister, archiver) opens its own.
 *
 * Deployment requirement: a replica set (a single-node replica set is enough). createTurn,
 * finishTurn and saveSnapshot are multi-document transactions, and writes are retryable; a
 * standalone mongod supports neither.
 *
 * Invariants:
 * - every public method runs through `run`, which turns "cannot reach MongoDB" failures into
 *   StoreUnavailableError (never quoting the URL's credentials) and rethrows everything else;
 * - createTurn, finishTurn and saveSnapshot each run in one transaction with snapshot reads and
 *   majority commits; the driver retries transient conflicts (two transactions writing the same
 *   session or history slot), and a duplicate key that still surfaces re-runs the transaction,
 *   which then sees the winner's write;
 * - at most one turn exists per (user, idempotency key) while the key is live, across
 *   processes: the claim is checked and written in one transaction and the unique index on
 *   `idempotency` backs that up; a create that loses the race answers with the winner's replay;
 * - the event log is appended without transactions, step by step in an order that survives a
 *   crash between steps (see event-buckets.ts).
 *
 * Sessions and turns, the event log, the bucket registry, snapshots, artifacts, approvals and the
 * audit log each have their own module on the same connection, which this class delegates to.
 */
import type { Connection } from "mongoose";
import type { ContextMessage } from "../../context/message.js";
import type { BucketGranularity } from "../buckets.js";
import { StoreUnavailableError } from "../errors.js";
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
import { MongoApprovals } from "./approvals.js";
import { MongoArtifacts } from "./artifacts.js";
import { MongoAudit } from "./audit.js";
import { BucketRegistry } from "./bucket-registry.js";
import {
  connectMongo,
  inTransaction,
  MONGO_DEFAULTS,
  type MongoStoreOptions,
} from "./connection.js";
import { duplicateKeyCollection, guarded, isDuplicateKeyError } from "./driver-errors.js";
import { MongoEventBuckets } from "./event-buckets.js";
import { EventCollections } from "./event-collections.js";
import { COLLECTIONS, createModels, ensureIndexes, type MongoModels } from "./models.js";
import { MongoSnapshots } from "./snapshots.js";
import { MongoTurns } from "./turns.js";

export type { MongoStoreOptions } from "./connection.js";

/** How many times a transaction is run when it keeps ending on a duplicate key. */
const DUPLICATE_KEY_ATTEMPTS = 3;

export class MongoStore implements Store {
  private readonly turns: MongoTurns;
  private readonly events: MongoEventBuckets;
  private readonly buckets: BucketRegistry;
  private readonly snapshots: MongoSnapshots;
  private readonly artifacts: MongoArtifacts;
  private readonly approvals: MongoApprovals;
  private readonly audit: MongoAudit;
  private closed = false;

  /** Connects to `url` and builds the indexes; rejects with StoreUnavailableError when unreachable. */
  static async open(url: string, options: MongoStoreOptions = {}): Promise<MongoStore> {
    const connection = await connectMongo(url, options);
    try {
      const models = createModels(connection);
      await guarded(() => ensureIndexes(models), url);
      const granularity = options.bucketGranularity ?? MONGO_DEFAULTS.bucketGranularity;
      return new MongoStore(connection, models, url, granularity);
    } catch (err) {
      await connection.close().catch(() => undefined);
      throw err;
    }
  }

  private constructor(
    private readonly connection: Connection,
    models: MongoModels,
    /** Kept only to cut its credentials out of error messages. */
    private readonly url: string,
    granularity: BucketGranularity,
  ) {
    const collections = new EventCollections(connection);
    this.turns = new MongoTurns(models);
    this.buckets = new BucketRegistry(models, collections);
    this.events = new MongoEventBuckets(models, collections, this.buckets, granularity);
    this.snapshots = new MongoSnapshots(models);
    this.artifacts = new MongoArtifacts(models);
    this.approvals = new MongoApprovals(models);
    this.audit = new MongoAudit(models);
  }

  async ping(): Promise<void> {
    return this.run(async () => {
      const db = this.connection.db;
      if (db === undefined)
        throw new StoreUnavailableError("MongoDB is unreachable: not connected");
      await db.admin().ping();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await guarded(() => this.connection.close(), this.url);
  }

  async getSession(id: string): Promise<SessionRecord | null> {
    return this.run(() => this.turns.getSession(id));
  }

  async createTurn(turn: NewTurn, idempotency: IdempotencyClaim | null): Promise<CreateTurnResult> {
    return this.run(async () => {
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await inTransaction(this.connection, (session) =>
            this.turns.createIn(turn, idempotency, session),
          );
        } catch (err) {
          if (!isDuplicateKeyError(err)) throw err;
          // A concurrent create with the same key committed first: answer as the winner would.
          if (idempotency !== null) {
            const replay = await this.turns.liveReplay(
              turn.userId,
              idempotency.key,
              turn.createdAt,
            );
            if (replay !== null) return replay;
          }
          // Another create made the session first: run again to find it. A taken turn id stays taken.
          if (duplicateKeyCollection(err) === COLLECTIONS.turns) throw err;
          if (attempt >= DUPLICATE_KEY_ATTEMPTS) throw err;
        }
      }
    });
  }

  async findIdempotentTurn(
    userId: string,
    key: string,
    now: number,
  ): Promise<{ turn: TurnRecord; requestHash: string } | null> {
    return this.run(async () => {
      const replay = await this.turns.liveReplay(userId, key, now);
      return replay === null ? null : { turn: replay.turn, requestHash: replay.requestHash };
    });
  }

  async getTurn(id: string): Promise<TurnRecord | null> {
    return this.run(() => this.turns.getTurn(id));
  }

  async setTurnFirstSeq(id: string, seq: number): Promise<void> {
    return this.run(() => this.turns.setFirstSeq(id, seq));
  }

  async markTurnRunning(id: string, now: number): Promise<TurnRecord | null> {
    return this.run(() => this.turns.markRunning(id, now));
  }

  async finishTurn(id: string, outcome: TurnOutcome, history: ContextMessage[]): Promise<boolean> {
    if (!isTerminal(outcome.status)) {
      throw new Error(`finishTurn needs a terminal status, got "${outcome.status}"`);
    }
    return this.run(() =>
      this.retryingDuplicates(() =>
        inTransaction(this.connection, (session) =>
          this.turns.finishIn(id, outcome, history, session),
        ),
      ),
    );
  }

  async listSessionTurns(sessionId: string, limit: number): Promise<TurnRecord[]> {
    return this.run(() => this.turns.listSession(sessionId, limit));
  }

  async sessionUsage(sessionId: string): Promise<SessionUsage> {
    return this.run(() => this.turns.sessionUsage(sessionId));
  }

  async listStaleTurns(before: number, limit: number, after?: TurnCursor): Promise<TurnRecord[]> {
    return this.run(() => this.turns.listStale(before, limit, after));
  }

  async loadHistory(sessionId: string): Promise<ContextMessage[]> {
    return this.run(() => this.turns.loadHistory(sessionId));
  }

  async purgeExpiredIdempotency(now: number): Promise<number> {
    return this.run(() => this.turns.purgeExpiredIdempotency(now));
  }

  async appendEvents(events: StoredEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    return this.run(() => this.events.append(events, Date.now()));
  }

  async readEvents(sessionId: string, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    return this.run(() => this.events.read(sessionId, afterSeq, limit));
  }

  async maxSeq(sessionId: string): Promise<number> {
    return this.run(() => this.events.maxSeq(sessionId));
  }

  async listSessionBuckets(sessionId: string): Promise<SessionBucket[]> {
    return this.run(() => this.events.sessionBuckets(sessionId));
  }

  async listBuckets(): Promise<BucketRecord[]> {
    return this.run(() => this.buckets.list());
  }

  async getBucket(name: string): Promise<BucketRecord | null> {
    return this.run(() => this.buckets.get(name));
  }

  async setBucketStatus(
    name: string,
    from: BucketStatus,
    to: BucketStatus,
    now: number,
  ): Promise<BucketRecord | null> {
    return this.run(() => this.buckets.setStatus(name, from, to, now));
  }

  async readBucketEvents(
    name: string,
    after: BucketCursor | null,
    limit: number,
  ): Promise<StoredEvent[]> {
    return this.run(() => this.buckets.readEvents(name, after, limit));
  }

  async completeArchive(name: string, archive: BucketArchive): Promise<BucketRecord | null> {
    return this.run(() => this.buckets.completeArchive(name, archive));
  }

  async restoreEvents(name: string, events: StoredEvent[]): Promise<number> {
    if (events.length === 0) return 0;
    return this.run(() => this.events.restore(name, events));
  }

  async saveSnapshot(snapshot: SessionSnapshot): Promise<boolean> {
    return this.run(() =>
      this.retryingDuplicates(() =>
        inTransaction(this.connection, (session) => this.snapshots.saveIn(snapshot, session)),
      ),
    );
  }

  async latestSnapshot(sessionId: string): Promise<SessionSnapshot | null> {
    return this.run(() => this.snapshots.latest(sessionId));
  }

  async loadContext(sessionId: string): Promise<SessionContext> {
    return this.run(() => this.snapshots.load(sessionId));
  }

  async putArtifact(artifact: NewArtifact, content: Buffer): Promise<ArtifactRecord> {
    return this.run(() => this.artifacts.put(artifact, content));
  }

  async getArtifact(id: string): Promise<{ record: ArtifactRecord; content: Buffer } | null> {
    return this.run(() => this.artifacts.get(id));
  }

  async listArtifacts(sessionId: string): Promise<ArtifactRecord[]> {
    return this.run(() => this.artifacts.list(sessionId));
  }

  async createApproval(approval: NewApproval): Promise<ApprovalRecord> {
    return this.run(() => this.approvals.create(approval));
  }

  async getApproval(id: string): Promise<ApprovalRecord | null> {
    return this.run(() => this.approvals.get(id));
  }

  async decideApproval(
    id: string,
    decision: ApprovalDecisionInput,
  ): Promise<{ changed: boolean; approval: ApprovalRecord } | null> {
    return this.run(() => this.approvals.decide(id, decision));
  }

  async listTurnApprovals(turnId: string): Promise<ApprovalRecord[]> {
    return this.run(() => this.approvals.listTurn(turnId));
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    return this.run(() => this.audit.append(entry));
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.run(() => this.audit.list(query));
  }

  /** Runs a store operation: a closed handle refuses, connectivity failures become unavailable. */
  private async run<T>(operation: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreUnavailableError("MongoDB store handle is closed");
    return guarded(operation, this.url);
  }

  /** Runs a transaction again when it ended on a duplicate key (the racing writer committed first). */
  private async retryingDuplicates<T>(transaction: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await transaction();
      } catch (err) {
        if (!isDuplicateKeyError(err) || attempt >= DUPLICATE_KEY_ATTEMPTS) throw err;
      }
    }
  }
}
