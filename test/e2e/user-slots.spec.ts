/**
 * The per-user running cap over real HTTP and worker processes: never more than the cap of one
 * user's turns at once across workers, another user not stuck behind a backlog, and the user's
 * slot freed on every way a turn ends — completed, failed, cancelled (waiting, dispatched or
 * running), its job removed by an operator, its worker killed (once, or at random many times) —
 * so the user's next turn always runs.
 */
import { Queue } from "bullmq";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { EventEnvelope } from "../../src/events/envelope.js";
import { TURN_QUEUE_NAME } from "../../src/queue/turn-queue.js";
import {
  type Accepted,
  adminQueues,
  allTurnEvents,
  http,
  sleep,
  submit,
  type TurnView,
  waitForEvents,
  waitForStatus,
  waitForTurn,
  waitUntil,
} from "../helpers/client.js";
import { type SpawnedWorker, TestFarm } from "../helpers/farm.js";
import { REDIS_URL } from "../helpers/redis.js";

/**
 * One model call of about `ms` (the simulator waits that long before the first token; keep it
 * under the test config's 1 s idle timeout of the `sim` model).
 */
const slow = (ms: number, text = "hello") => `[[sim ttft_ms=${ms}]] ${text}`;
/** A streamed answer of about 1.2 s. */
const STREAMED = "[[sim token_delay_ms=20 reply_tokens=60]] go on";
/** A long streamed answer (about 20 s): the turn is surely still running when we act on it. */
const VERY_LONG = "[[sim token_delay_ms=50 reply_tokens=400]] tell me a long story";

/** Kill-and-recover settings: a dead worker's job is seen as stalled within about 2 s. */
const FAST_STALLS = {
  WORKER_LOCK_DURATION_MS: "1500",
  WORKER_STALLED_INTERVAL_MS: "500",
  SESSION_LEASE_TTL_MS: "1500",
};
const FAST_RECONCILE = { RECONCILE_INTERVAL_MS: "250", RECONCILE_MIN_AGE_MS: "300" };

function submitAs(farm: TestFarm, userId: string, input: string): Promise<Accepted> {
  return submit(farm.url, { input, user_id: userId });
}

async function statusOf(farm: TestFarm, turnId: string): Promise<TurnView> {
  return (await http<TurnView>(farm.url, "GET", `/v1/turns/${turnId}`)).body;
}

/** The user's turns holding running slots (dispatched or running), from Redis. */
function slotsOf(farm: TestFarm, userId: string): Promise<string[]> {
  return farm.redis.smembers(farm.fairKey(`run:${userId}`));
}

/**
 * The user holds no slot and waits for nothing, its counters are gone, and a fresh turn of the
 * user (in a new session) runs to completion: nothing of the ended turns blocks the user.
 */
async function expectUserFree(farm: TestFarm, userId: string, timeoutMs = 5_000): Promise<void> {
  await waitUntil(
    `${userId}'s slots to be freed`,
    async () => (await slotsOf(farm, userId)).length === 0,
    timeoutMs,
  );
  expect(await farm.redis.llen(farm.fairKey(`q:${userId}`))).to.equal(0);
  expect(await farm.redis.zscore(farm.fairKey("running"), userId)).to.equal(null);
  expect(await farm.redis.zscore(farm.fairKey("backlog"), userId)).to.equal(null);
  const next = await submitAs(farm, userId, "my next turn");
  const done = await waitForTurn(farm.url, next.turn_id, 15_000);
  expect(done.status, `${userId}'s next turn`).to.equal("completed");
  await waitUntil(
    `${userId}'s next turn to free its slot`,
    async () => (await slotsOf(farm, userId)).length === 0,
  );
}

/** When the turn (first) started running and when it ended, from its own events. */
function runInterval(events: EventEnvelope[]): { start: number; end: number } {
  const starts = events.filter(
    (e) => e.type === "progress" && (e.data.stage === "start" || e.data.stage === "resumed"),
  );
  const terminal = events.find((e) => e.type === "turn_terminal");
  const first = starts[0];
  if (!first || !terminal) throw new Error(`turn ${events[0]?.turn_id} has no start or end`);
  return { start: first.ts, end: terminal.ts };
}

/** The most intervals open at one instant (an interval ending at t is closed before one opens). */
function maxOverlap(intervals: { start: number; end: number }[]): number {
  const points = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ]);
  points.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let most = 0;
  for (const p of points) {
    open += p.delta;
    most = Math.max(most, open);
  }
  return most;
}

describe("per-user running cap across workers (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({
      workers: 3,
      env: { FAIR_MAX_RUNNING_PER_USER: "2", WORKER_CONCURRENCY: "16" },
    });
  });
  after(async () => {
    await farm?.stop();
  });

  it("runs at most 2 of a user's 12 turns at once on 3 workers; another user starts at once", async () => {
    // Sample the user's slot set (Redis) and the admin view (HTTP) while the turns run.
    let sampling = true;
    const samples = { slots: [] as number[], admin: [] as number[] };
    const sampler = (async () => {
      while (sampling) {
        const [slots, overview] = await Promise.all([
          farm.redis.scard(farm.fairKey("run:alice")),
          adminQueues(farm.url),
        ]);
        samples.slots.push(slots);
        const row = overview.busiest_users.find((u) => u.user_id === "alice");
        samples.admin.push(row?.running ?? 0);
        await sleep(25);
      }
    })();

    const alice: Accepted[] = [];
    for (let i = 0; i < 12; i++) alice.push(await submitAs(farm, "alice", slow(300, `turn ${i}`)));
    // Alice has a backlog now (12 turns of 300 ms, 2 at a time); Bob must not wait behind it.
    const bob = await submitAs(farm, "bob", slow(300, "bob's turn"));

    const ended = await Promise.all(alice.map((a) => waitForTurn(farm.url, a.turn_id, 30_000)));
    const bobEnded = await waitForTurn(farm.url, bob.turn_id, 30_000);
    sampling = false;
    await sampler;

    expect(ended.map((t) => t.status)).to.deep.equal(Array(12).fill("completed"));
    expect(bobEnded.status).to.equal("completed");
    expect(samples.slots.length, "samples taken").to.be.greaterThan(20);
    expect(Math.max(...samples.slots), "slot set size").to.equal(2);
    expect(Math.max(...samples.admin), "running per the admin view").to.be.at.most(2);

    // From the turns' own events: never more than 2 of Alice's turns between start and end.
    const runs = await Promise.all(
      alice.map(async (a) => runInterval(await allTurnEvents(farm.url, a.turn_id))),
    );
    expect(maxOverlap(runs), "Alice's turns running at once").to.equal(2);
    // Bob started while most of Alice's turns had still not started.
    const bobRun = runInterval(await allTurnEvents(farm.url, bob.turn_id));
    const aliceLater = runs.filter((r) => r.start > bobRun.start).length;
    expect(aliceLater, "Alice's turns that started after Bob's").to.be.at.least(6);

    expect(await slotsOf(farm, "alice")).to.deep.equal([]);
    expect(await slotsOf(farm, "bob")).to.deep.equal([]);
  });
});

describe("a user's slot is freed on every ending (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  // Cap 1: a slot that is not freed blocks the user's next turn for good. The reconciler keeps
  // its slow defaults here, so only the normal ending paths can free the slots in time.
  before(async () => {
    farm = await TestFarm.start({ workers: 1, env: { FAIR_MAX_RUNNING_PER_USER: "1" } });
  });
  after(async () => {
    await farm?.stop();
  });

  it("completed", async () => {
    const a = await submitAs(farm, "u-completed", "hello");
    expect((await waitForTurn(farm.url, a.turn_id)).status).to.equal("completed");
    await expectUserFree(farm, "u-completed", 2_000);
  });

  it("failed (context window exceeded)", async () => {
    const a = await submitAs(farm, "u-failed", "[[sim fault=context_overflow]] hello");
    const turn = await waitForTurn(farm.url, a.turn_id);
    expect(turn.status).to.equal("failed");
    expect(turn.error?.code).to.equal("context_window_exceeded");
    await expectUserFree(farm, "u-failed", 2_000);
  });

  it("cancelled while waiting in the user's FIFO behind the cap", async () => {
    const user = "u-cancel-queued";
    const running = await submitAs(farm, user, STREAMED);
    await waitForStatus(farm.url, running.turn_id, "running");
    const waiting = await submitAs(farm, user, "behind the cap");
    // Another session, so only the cap holds it back: it waits in the FIFO, holding no slot.
    expect(waiting.session_id).to.not.equal(running.session_id);
    expect(await farm.redis.lpos(farm.fairKey(`q:${user}`), waiting.turn_id)).to.equal(0);
    expect(await slotsOf(farm, user)).to.deep.equal([running.turn_id]);
    expect((await statusOf(farm, waiting.turn_id)).status).to.equal("queued");

    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${waiting.turn_id}/cancel`);
    expect(reply.body.status).to.equal("cancelled");
    expect(await farm.redis.llen(farm.fairKey(`q:${user}`))).to.equal(0);
    expect(await slotsOf(farm, user)).to.deep.equal([running.turn_id]);

    expect((await waitForTurn(farm.url, running.turn_id)).status).to.equal("completed");
    await expectUserFree(farm, user, 2_000);
    const events = await allTurnEvents(farm.url, waiting.turn_id);
    expect(events.map((e) => e.type)).to.deep.equal(["queued", "error", "turn_terminal"]);
  });

  it("cancelled while running", async () => {
    const user = "u-cancel-running";
    const a = await submitAs(farm, user, VERY_LONG);
    await waitForEvents(farm.url, a.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta"),
    );
    const waiting = await submitAs(farm, user, "behind the cap");
    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${a.turn_id}/cancel`);
    expect(reply.body.status).to.equal("cancelled");
    // The turn waiting behind the cap gets the freed slot by itself.
    expect((await waitForTurn(farm.url, waiting.turn_id)).status).to.equal("completed");
    await expectUserFree(farm, user, 2_000);
  });
});

describe("a user's slot with no worker running, after an operator, after a crash (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  beforeEach(async () => {
    farm = await TestFarm.start({
      workers: 0,
      env: {
        FAIR_MAX_RUNNING_PER_USER: "1",
        WORKER_MAX_STALLED_COUNT: "0",
        ...FAST_STALLS,
        ...FAST_RECONCILE,
      },
    });
  });
  afterEach(async () => {
    await farm?.stop();
  });

  it("an operator removed the job of a dispatched turn: the reconciler repairs, the user moves on", async () => {
    const user = "u-removed";
    const connection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    const queue = new Queue(TURN_QUEUE_NAME, {
      connection,
      prefix: `${farm.config.redis.prefix}:bull`,
    });
    try {
      // No worker yet: the turn is dispatched (it holds the user's slot, its job waits) but not
      // started.
      const a = await submitAs(farm, user, "my job is removed");
      await waitUntil("the turn's job", async () => (await queue.getJob(a.turn_id)) !== undefined);
      const job = await queue.getJob(a.turn_id);
      expect(await job?.getState()).to.equal("waiting");
      expect(await slotsOf(farm, user)).to.deep.equal([a.turn_id]);
      const b = await submitAs(farm, user, "behind the cap");
      expect(await farm.redis.lpos(farm.fairKey(`q:${user}`), b.turn_id)).to.equal(0);

      await job?.remove();
      expect(await queue.getJob(a.turn_id)).to.equal(undefined);
      await farm.addWorker();

      // Either the turn gets its job back and completes, or it ends; it does not stay stuck.
      const endA = await waitForTurn(farm.url, a.turn_id, 20_000);
      expect(["completed", "failed", "cancelled"]).to.include(endA.status);
      expect((await waitForTurn(farm.url, b.turn_id, 20_000)).status).to.equal("completed");
      await expectUserFree(farm, user);
    } finally {
      await queue.close();
      await connection.quit();
    }
  });

  it("cancelled after dispatch, before any worker took its job", async () => {
    const user = "u-cancel-dispatched";
    const a = await submitAs(farm, user, "dispatched, never started");
    await waitUntil("the turn's job", async () => {
      return (await farm.api.context.queue.getJob(a.turn_id)) !== undefined;
    });
    expect(await slotsOf(farm, user)).to.deep.equal([a.turn_id]);
    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${a.turn_id}/cancel`);
    expect(reply.body.status).to.equal("cancelled");
    expect(await farm.api.context.queue.getJob(a.turn_id)).to.equal(undefined);
    expect(await slotsOf(farm, user)).to.deep.equal([]);
    await farm.addWorker();
    await expectUserFree(farm, user, 2_000);
  });

  it("a SIGKILLed worker's job stalls and fails for good: the turn fails, the slot is freed", async () => {
    const user = "u-killed";
    const victim = await farm.spawnWorker();
    const a = await submitAs(farm, user, VERY_LONG);
    await waitForEvents(farm.url, a.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta"),
    );
    const b = await submitAs(farm, user, "behind the cap");
    expect(await farm.redis.lpos(farm.fairKey(`q:${user}`), b.turn_id)).to.equal(0);

    const exited = new Promise((resolve) => victim.once("exit", resolve));
    victim.kill("SIGKILL");
    await exited;
    await farm.addWorker();

    const endA = await waitForTurn(farm.url, a.turn_id, 30_000);
    expect(endA.status).to.equal("failed");
    expect(endA.error?.code).to.equal("worker_failure");
    const events = await allTurnEvents(farm.url, a.turn_id);
    expect(events.filter((e) => e.type === "turn_terminal")).to.have.length(1);
    // The freed slot goes to the turn that waited, on the surviving worker.
    expect((await waitForTurn(farm.url, b.turn_id, 20_000)).status).to.equal("completed");
    await expectUserFree(farm, user);
  });
});

describe("random worker kills (end to end)", function () {
  // The whole scenario (3 worker starts, 4 kills and restarts, 24 + 4 turns) is bounded by this.
  this.timeout(60_000);
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({
      workers: 0,
      env: {
        FAIR_MAX_RUNNING_PER_USER: "2",
        WORKER_CONCURRENCY: "4",
        ...FAST_STALLS,
        ...FAST_RECONCILE,
      },
    });
  });
  after(async () => {
    await farm?.stop();
  });

  it("ends every turn, leaves no slot, backlog or claim behind, and blocks no user", async () => {
    const started = Date.now();
    const live: SpawnedWorker[] = await Promise.all([0, 1, 2].map(() => farm.spawnWorker()));
    const users = ["k-ann", "k-ben", "k-cat", "k-dan"];
    const turns: Accepted[] = [];
    for (let i = 0; i < 6; i++) {
      for (const user of users) {
        // About 3 s each; every third one also runs a tool round.
        const input = `[[sim ttft_ms=150 token_delay_ms=40 reply_tokens=70]] ${
          i % 3 === 0 ? "please list the files" : `turn ${i}`
        }`;
        turns.push(await submitAs(farm, user, input));
      }
    }
    await waitUntil(
      "turns to be running",
      async () => (await farm.redis.zcard(farm.fairKey("running"))) >= 3,
    );

    // Kill a random ready worker every 1–2 s; its replacement starts meanwhile.
    let kills = 0;
    const replacements: Promise<void>[] = [];
    for (let i = 0; i < 4; i++) {
      await sleep(1_000 + Math.floor(Math.random() * 1_000));
      if (live.length < 2) await Promise.all(replacements);
      const victim = live.splice(Math.floor(Math.random() * live.length), 1)[0];
      if (!victim) break;
      const exited = new Promise((resolve) => victim.once("exit", resolve));
      victim.kill("SIGKILL");
      await exited;
      kills++;
      replacements.push(farm.spawnWorker().then((worker) => void live.push(worker)));
    }
    await Promise.all(replacements);
    expect(kills).to.equal(4);
    const remaining = Math.max(5_000, 35_000 - (Date.now() - started));
    const ended = await Promise.all(turns.map((t) => waitForTurn(farm.url, t.turn_id, remaining)));
    for (const turn of ended) {
      if (turn.status === "failed") expect(turn.error?.code).to.equal("worker_failure");
      else expect(turn.status).to.equal("completed");
    }
    // The kills hit running turns: some were resumed elsewhere (or failed for good).
    const disrupted = ended.filter((t) => t.attempt > 1 || t.status === "failed");
    expect(disrupted.length, "turns hit by a kill").to.be.greaterThan(0);

    for (const user of users) {
      await waitUntil(`${user}'s slots to be freed`, async () => {
        return (await slotsOf(farm, user)).length === 0;
      });
    }
    // Nothing left behind: no counter, no waiting turn, no claim without its job (every turn
    // has ended, so a claim a killed dispatcher left was re-published by the repair already).
    await waitUntil(
      "the scheduler's counters to drain",
      async () => {
        const [running, backlog, waiting] = await Promise.all([
          farm.redis.zcard(farm.fairKey("running")),
          farm.redis.zcard(farm.fairKey("backlog")),
          farm.redis.zcard(farm.fairKey("waiting")),
        ]);
        return running + backlog + waiting === 0;
      },
      10_000,
    );

    const fresh = await Promise.all(users.map((user) => submitAs(farm, user, "fresh turn")));
    const freshEnded = await Promise.all(
      fresh.map((t) => waitForTurn(farm.url, t.turn_id, 10_000)),
    );
    expect(freshEnded.map((t) => t.status)).to.deep.equal(users.map(() => "completed"));
  });
});
