/**
 * The Reconciler against a real SqliteStore (temp folder) and a real BullMQ queue: a stale turn
 * with no job is admitted again, a turn whose job failed for good goes to `failTurn`, young
 * turns and turns with a live job are left alone, and the Redis lock lets only one of two
 * concurrent passes work. Each test gets its own store file and key prefix, so stale turns of
 * one test never reach another's pass.
 */
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Queue, Worker } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { createLogger } from "../../src/obs/logger.js";
import { Reconciler, type ReconcilerOptions } from "../../src/queue/reconciler.js";
import { createTurnQueue, TURN_QUEUE_NAME, type TurnJobData } from "../../src/queue/turn-queue.js";
import { type RedisKeys, redisKeys } from "../../src/redis/keys.js";
import type { Scheduler } from "../../src/scheduler/scheduler.js";
import { SchedulerRepair } from "../../src/scheduler/scheduler-repair.js";
import type { IdempotencyClaim, TurnRecord } from "../../src/store/port.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";
import { schedulerFor } from "../scheduler/helpers.js";
import { testPrefix, uniqueId } from "./helpers.js";

const MIN_AGE_MS = 60_000;
/** Also the lock's TTL: long enough that no test's second pass outlives it. */
const INTERVAL_MS = 60_000;
const STALE_AGE_MS = 10 * 60_000;

interface FailCall {
  turnId: string;
  reason: string;
}

describe("Reconciler", () => {
  const filePrefix = testPrefix("reconciler");
  const logger = createLogger("test-reconciler", "error");
  let redis: Redis;
  let queueConnection: Redis;
  let dir = "";
  // Per test:
  let keys: RedisKeys;
  let store: SqliteStore;
  let queue: Queue<TurnJobData>;
  let scheduler: Scheduler;
  let failCalls: FailCall[];
  let options: ReconcilerOptions;

  before(async () => {
    redis = new Redis(REDIS_URL);
    queueConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    dir = await mkdtemp(path.join(tmpdir(), "farm-reconciler-"));
  });

  beforeEach(() => {
    keys = redisKeys(`${filePrefix}-${uniqueId("t")}`);
    store = SqliteStore.open(path.join(dir, `${uniqueId("store")}.sqlite`));
    queue = createTurnQueue(queueConnection, keys.bullPrefix);
    // A running cap above every test's turn count: these tests are about jobs, not fairness.
    scheduler = schedulerFor(redis, keys, { maxRunningPerUser: 1_000 });
    failCalls = [];
    options = {
      intervalMs: INTERVAL_MS,
      minAgeMs: MIN_AGE_MS,
      lockKey: `${keys.bullPrefix}-reconciler-lock`,
    };
  });

  afterEach(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await store.close();
  });

  after(async () => {
    await deleteKeys(redis, `${filePrefix}-*`);
    await queueConnection.quit();
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  });

  function reconciler(
    failTurn: (turn: TurnRecord, reason: string) => Promise<void> = async (turn, reason) => {
      failCalls.push({ turnId: turn.id, reason });
    },
    from: SqliteStore = store,
  ): Reconciler {
    const noHooks = { closeOut: async () => {}, drop: async () => {} };
    const schedulerRepair = new SchedulerRepair(
      from,
      scheduler.fair,
      scheduler.dispatcher,
      noHooks,
      logger,
      MIN_AGE_MS,
    );
    return new Reconciler(
      {
        redis,
        store: from,
        queue,
        admission: scheduler.admission,
        fair: scheduler.fair,
        schedulerRepair,
        failTurn,
        logger,
      },
      options,
    );
  }

  /** The turn is back in the scheduler: waiting for dispatch or dispatched as a job. */
  async function admitted(turn: TurnRecord): Promise<boolean> {
    return (await scheduler.fair.stateOf(turn)) !== "unknown" || !!(await queue.getJob(turn.id));
  }

  /** A queued turn in the store, created `ageMs` ago (with an idempotency claim, if given). */
  async function storedTurn(
    ageMs: number,
    claim: IdempotencyClaim | null = null,
  ): Promise<TurnRecord> {
    const result = await store.createTurn(
      {
        id: uniqueId("turn"),
        sessionId: uniqueId("sess"),
        userId: "user-r",
        input: "hi",
        model: "sim",
        tools: [],
        metadata: null,
        createdAt: Date.now() - ageMs,
      },
      claim,
    );
    if (result.kind !== "created") throw new Error(`turn not created: ${result.kind}`);
    return result.turn;
  }

  /** Adds the turn's job (one attempt) and lets a worker fail it, so its job is `failed`. */
  async function failJobOf(turn: TurnRecord, message: string): Promise<void> {
    await queue.add(
      "turn",
      { turnId: turn.id, sessionId: turn.sessionId, userId: turn.userId },
      { jobId: turn.id, attempts: 1 },
    );
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const worker = new Worker<TurnJobData>(
      TURN_QUEUE_NAME,
      async () => {
        throw new Error(message);
      },
      { connection, prefix: keys.bullPrefix, autorun: false },
    );
    try {
      const failed = once(worker, "failed");
      void worker.run();
      await failed;
    } finally {
      await worker.close();
      await connection.quit();
    }
    expect(await (await queue.getJob(turn.id))?.getState()).to.equal("failed");
  }

  it("admits a stale turn that has no job again", async () => {
    const turn = await storedTurn(STALE_AGE_MS);
    expect(await queue.getJob(turn.id)).to.equal(undefined);

    expect(await reconciler().pass()).to.equal(1);

    const job = await queue.getJob(turn.id);
    expect(job?.data).to.deep.equal({
      turnId: turn.id,
      sessionId: turn.sessionId,
      userId: turn.userId,
    });
    expect(await redis.lrange(keys.sessionOrder(turn.sessionId), 0, -1)).to.deep.equal([turn.id]);
    expect(failCalls).to.deep.equal([]);
  });

  it("passes a stale turn whose job failed for good to failTurn", async () => {
    const turn = await storedTurn(STALE_AGE_MS);
    await failJobOf(turn, "worker blew up");

    expect(await reconciler().pass()).to.equal(1);

    expect(failCalls).to.deep.equal([{ turnId: turn.id, reason: "worker blew up" }]);
    expect(await (await queue.getJob(turn.id))?.getState()).to.equal("failed");
  });

  it("leaves a stale turn whose job is still waiting alone", async () => {
    const turn = await storedTurn(STALE_AGE_MS);
    await scheduler.admission.admit(turn);

    expect(await reconciler().pass()).to.equal(0);

    expect(failCalls).to.deep.equal([]);
    expect(await (await queue.getJob(turn.id))?.getState()).to.equal("waiting");
  });

  it("leaves a turn younger than minAgeMs alone", async () => {
    const turn = await storedTurn(0);

    expect(await reconciler().pass()).to.equal(0);

    expect(await queue.getJob(turn.id)).to.equal(undefined);
    expect(await redis.lrange(keys.sessionOrder(turn.sessionId), 0, -1)).to.deep.equal([]);
  });

  it("repairs stale turns and skips young ones in the same pass", async () => {
    const stale = await storedTurn(STALE_AGE_MS);
    const young = await storedTurn(0);

    expect(await reconciler().pass()).to.equal(1);

    expect(await queue.getJob(stale.id)).to.not.equal(undefined);
    expect(await queue.getJob(young.id)).to.equal(undefined);
  });

  it("lets only one of two concurrent passes do the work", async () => {
    const turns = [await storedTurn(STALE_AGE_MS), await storedTurn(STALE_AGE_MS)];

    const results = await Promise.all([reconciler().pass(), reconciler().pass()]);

    expect([...results].sort()).to.deep.equal([0, 2]);
    for (const turn of turns) expect(await queue.getJob(turn.id)).to.not.equal(undefined);
  });

  it("runs passes on its interval after start() until stop()", async () => {
    options = { ...options, intervalMs: 50 };
    const turn = await storedTurn(STALE_AGE_MS);
    const running = reconciler();
    running.start();
    try {
      while (!(await queue.getJob(turn.id))) await new Promise((r) => setTimeout(r, 20));
    } finally {
      await running.stop();
    }
    expect(await redis.lrange(keys.sessionOrder(turn.sessionId), 0, -1)).to.deep.equal([turn.id]);
  });

  it("stop() waits for a pass in flight", async () => {
    options = { ...options, intervalMs: 20 };
    const turn = await storedTurn(STALE_AGE_MS);
    let entered: () => void = () => undefined;
    const inPass = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let open: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const gated: SqliteStore = Object.assign(Object.create(store), {
      listStaleTurns: async (before: number, limit: number) => {
        entered();
        await gate;
        return store.listStaleTurns(before, limit);
      },
    });
    const running = reconciler(async () => {}, gated);
    running.start();
    await inPass;
    const stopped = running.stop();
    open();
    await stopped;
    expect(await queue.getJob(turn.id), "the pass finished before stop() resolved").to.not.equal(
      undefined,
    );
  });

  it("keeps repairing the other stale turns when one repair throws", async () => {
    const poison = await storedTurn(STALE_AGE_MS + 60_000);
    await failJobOf(poison, "worker blew up");
    const missingJob = await storedTurn(STALE_AGE_MS);

    const repaired = await reconciler(async () => {
      throw new Error("store is busy");
    }).pass();

    expect(await queue.getJob(missingJob.id), "job of the younger stale turn").to.not.equal(
      undefined,
    );
    expect(repaired).to.equal(1);
  });

  it("re-admits a stale turn whose job completed without ending it", async () => {
    const turn = await storedTurn(STALE_AGE_MS);
    await scheduler.admission.admit(turn);
    const worker = new Worker<TurnJobData>(TURN_QUEUE_NAME, async () => "abandoned", {
      connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      prefix: keys.bullPrefix,
    });
    await once(worker, "completed");
    await worker.close();
    expect(await (await queue.getJob(turn.id))?.getState()).to.equal("completed");

    expect(await reconciler().pass()).to.equal(1);
    expect(await (await queue.getJob(turn.id))?.getState()).to.equal("waiting");
  });

  it("pages through more stale turns than one batch, across passes", async () => {
    const turns = [];
    for (let i = 0; i < 130; i++) turns.push(await storedTurn(STALE_AGE_MS + i));
    const first = reconciler();
    expect(await first.pass()).to.equal(130);
    for (const turn of turns) expect(await admitted(turn), turn.id).to.equal(true);
  });

  it("purges expired idempotency records on each pass", async () => {
    const expired = (key: string) => ({ key, requestHash: "h", expiresAt: Date.now() - 1 });
    await storedTurn(0, expired("k-old"));
    expect(await store.purgeExpiredIdempotency(Date.now())).to.equal(1);
    await storedTurn(0, expired("k-old-2"));
    await reconciler().pass();
    expect(await store.purgeExpiredIdempotency(Date.now())).to.equal(0);
  });
});
