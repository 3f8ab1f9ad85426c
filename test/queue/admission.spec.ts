/**
 * Admission against a real Redis and a real BullMQ queue (`createTurnQueue` on a private prefix):
 * a turn becomes one job whose id is the turn id and whose data holds ids only, enters its
 * session's order list, and admitting it again adds neither a second job nor a second entry.
 */
import type { Queue } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import { Admission } from "../../src/queue/admission.js";
import { SessionLeases } from "../../src/queue/session-lease.js";
import { createTurnQueue, type TurnJobData } from "../../src/queue/turn-queue.js";
import { type RedisKeys, redisKeys } from "../../src/redis/keys.js";
import { deleteKeys, REDIS_URL } from "../helpers/farm.js";
import { testPrefix, turnRecord } from "./helpers.js";

describe("Admission", () => {
  const prefix = testPrefix("admission");
  const keys: RedisKeys = redisKeys(prefix);
  let redis: Redis;
  let queueConnection: Redis;
  let queue: Queue<TurnJobData>;
  let admission: Admission;

  before(() => {
    redis = new Redis(REDIS_URL);
    queueConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    queue = createTurnQueue(queueConnection, keys.bullPrefix);
    admission = new Admission(queue, new SessionLeases(redis, keys, 30_000));
  });

  after(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    await deleteKeys(redis, `${prefix}:*`);
    await queueConnection.quit();
    await redis.quit();
  });

  const order = (sessionId: string) => redis.lrange(keys.sessionOrder(sessionId), 0, -1);

  it("adds one job with id = turn id and only ids in its data", async () => {
    const turn = turnRecord({ input: "a secret prompt", metadata: { apiKey: "sk-nope" } });
    const before = (await queue.getJobCounts("waiting")).waiting ?? 0;

    await admission.admit(turn);

    const job = await queue.getJob(turn.id);
    expect(job, "job").to.not.equal(undefined);
    expect(job?.id).to.equal(turn.id);
    expect(job?.data).to.deep.equal({
      turnId: turn.id,
      sessionId: turn.sessionId,
      userId: turn.userId,
    });
    expect((await queue.getJobCounts("waiting")).waiting).to.equal(before + 1);
    expect(await order(turn.sessionId)).to.deep.equal([turn.id]);
  });

  it("is idempotent: a second admit adds no job and no order entry", async () => {
    const turn = turnRecord();
    await admission.admit(turn);
    const afterFirst = (await queue.getJobCounts("waiting")).waiting;

    await admission.admit(turn);

    expect((await queue.getJobCounts("waiting")).waiting).to.equal(afterFirst);
    const jobs = await queue.getJobs(["waiting"]);
    expect(jobs.filter((j) => j.id === turn.id)).to.have.length(1);
    expect(await order(turn.sessionId)).to.deep.equal([turn.id]);
  });

  it("keeps a session's turns in admission order", async () => {
    const first = turnRecord();
    const second = turnRecord({ sessionId: first.sessionId });
    const third = turnRecord({ sessionId: first.sessionId });
    await admission.admit(first);
    await admission.admit(second);
    await admission.admit(first);
    await admission.admit(third);
    expect(await order(first.sessionId)).to.deep.equal([first.id, second.id, third.id]);
  });
});
