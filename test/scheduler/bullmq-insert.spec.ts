/**
 * Jobs the dispatcher adds from Lua (src/scheduler/bullmq-insert.ts) are jobs BullMQ runs like
 * its own: a real Worker takes them, sees their data and options, retries with the configured
 * attempts and backoff; an existing job is not added twice; a
 * paused queue keeps them until it resumes. Run this when upgrading BullMQ.
 */
import { once } from "node:events";
import { type Job, Worker } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { TURN_JOB_OPTIONS, TURN_QUEUE_NAME, type TurnJobData } from "../../src/queue/turn-queue.js";
import type { TurnRef } from "../../src/scheduler/fair-queue.js";
import { REDIS_URL } from "../helpers/redis.js";
import { uniqueId } from "../queue/helpers.js";
import { schedulerFixture, schedulerFor } from "./helpers.js";

describe("Jobs added by the dispatcher's Lua", () => {
  const fx = schedulerFixture("insert");

  const turnOf = (userId = "ins"): TurnRef => ({
    id: uniqueId("turn"),
    sessionId: uniqueId("sess"),
    userId,
  });

  async function dispatch(turns: TurnRef[]): Promise<void> {
    const s = schedulerFor(fx.redis, fx.keys, { dispatchPrefetch: 100 });
    for (const turn of turns) await s.fair.admit(turn, s.tiers.limitsOf(turn.userId));
    await s.dispatcher.kick();
  }

  function worker(process: (job: Job<TurnJobData>) => Promise<string>): Worker<TurnJobData> {
    return new Worker<TurnJobData>(TURN_QUEUE_NAME, process, {
      connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }),
      prefix: fx.keys.bullPrefix,
      concurrency: 4,
    });
  }

  it("look to BullMQ like jobs it added itself: name, data, options, state", async () => {
    const turn = turnOf();
    await dispatch([turn]);
    const job = await fx.queue.getJob(turn.id);
    expect(job?.name).to.equal("turn");
    expect(job?.data).to.deep.equal({
      turnId: turn.id,
      sessionId: turn.sessionId,
      userId: turn.userId,
    });
    expect(job?.opts).to.deep.include({ ...TURN_JOB_OPTIONS, jobId: turn.id });
    expect(await job?.getState()).to.equal("waiting");
    expect(await fx.queue.getWaitingCount()).to.equal(1);
  });

  it("are run by a real worker and retried per their attempts and backoff", async () => {
    const turns = [turnOf(), turnOf()];
    const seen: string[] = [];
    const w = worker(async (job) => {
      seen.push(`${job.id}#${job.attemptsMade}`);
      if (job.id === turns[0]?.id && job.attemptsMade === 0) throw new Error("flaky");
      return "done";
    });
    try {
      const done = new Promise<void>((resolve) => {
        let completed = 0;
        w.on("completed", () => {
          if (++completed === turns.length) resolve();
        });
      });
      await dispatch(turns);
      await done;
    } finally {
      await w.close();
    }
    expect(seen).to.include.members([
      `${turns[0]?.id}#0`,
      `${turns[0]?.id}#1`,
      `${turns[1]?.id}#0`,
    ]);
    const retried = await fx.queue.getJob(turns[0]?.id as string);
    // One failed attempt, then one that completed (BullMQ counts both).
    expect(retried?.attemptsMade).to.equal(2);
    expect(await retried?.getState()).to.equal("completed");
    expect(await fx.queue.getCompletedCount()).to.equal(2);
  });

  it("do not replace a job that already exists", async () => {
    const turn = turnOf();
    await fx.queue.add(
      "turn",
      { turnId: turn.id, sessionId: "other", userId: "x" },
      {
        jobId: turn.id,
      },
    );
    await dispatch([turn]);
    expect((await fx.queue.getJob(turn.id))?.data.sessionId).to.equal("other");
    expect(await fx.queue.getWaitingCount()).to.equal(1);
  });

  it("wait while the queue is paused and run once it resumes", async () => {
    await fx.queue.pause();
    const w = worker(async () => "done");
    try {
      const turn = turnOf();
      await dispatch([turn]);
      expect(await (await fx.queue.getJob(turn.id))?.getState()).to.be.oneOf(["waiting", "paused"]);
      const completed = once(w, "completed");
      await fx.queue.resume();
      await completed;
      expect(await (await fx.queue.getJob(turn.id))?.getState()).to.equal("completed");
    } finally {
      await w.close();
    }
  });
});
