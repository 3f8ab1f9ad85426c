/**
 * The fair scheduler against a real Redis and a real BullMQ queue: dispatch order across users
 * (round-robin, weights, newcomers), the per-user running cap and its release, per-session
 * serialisation, withdrawal, idempotent admission, concurrent dispatchers, queue positions and
 * the repair of counters. No worker runs: the tests read what reached BullMQ's wait list.
 */
import { expect } from "chai";
import { Redis } from "ioredis";
import type { FarmConfig } from "../../src/config/schema.js";
import { metricsRegistry } from "../../src/obs/metrics.js";
import { SessionLeases } from "../../src/queue/session-lease.js";
import type { TurnRef } from "../../src/scheduler/fair-queue.js";
import type { Scheduler } from "../../src/scheduler/scheduler.js";
import { REDIS_URL } from "../helpers/redis.js";
import { uniqueId } from "../queue/helpers.js";
import { schedulerFixture, schedulerFor } from "./helpers.js";

/** This process's `farm_scheduler_dispatched_total`, by tier. */
async function dispatchedByTier(): Promise<Record<string, number>> {
  const metric = metricsRegistry.getSingleMetric("farm_scheduler_dispatched_total");
  const { values } = await (metric as NonNullable<typeof metric>).get();
  return Object.fromEntries(values.map((v) => [String(v.labels.tier), v.value]));
}

describe("Fair scheduler", () => {
  const fx = schedulerFixture("fair");

  /** A scheduler on this test's keys; `prefetch` is the whole window (no worker registered). */
  function scheduler(settings: Partial<FarmConfig["scheduler"]> = {}, conn = fx.redis): Scheduler {
    return schedulerFor(conn, fx.keys, { maxRunningPerUser: 1_000, ...settings });
  }

  function turnOf(userId: string, sessionId = uniqueId("sess")): TurnRef {
    return { id: uniqueId(`turn-${userId}`), sessionId, userId };
  }

  /** Queues turns without dispatching (admit through FairQueue, not Admission). */
  async function queueTurns(s: Scheduler, turns: TurnRef[]): Promise<void> {
    for (const turn of turns) await s.fair.admit(turn, s.tiers.limitsOf(turn.userId));
  }

  /** Job ids in BullMQ's wait list, in the order workers will take them. */
  async function dispatched(): Promise<string[]> {
    const jobs = await fx.queue.getJobs(["wait"], 0, -1, true);
    return jobs.map((j) => j.id as string);
  }

  /** Simulates a worker finishing a turn: its job goes, then it frees session and slot. */
  async function finish(s: Scheduler, turn: TurnRef): Promise<void> {
    await (await fx.queue.getJob(turn.id))?.remove();
    expect(await s.fair.endTurn(turn, null)).to.equal(true);
    expect(await fx.redis.lrange(fx.keys.sessionOrder(turn.sessionId), 0, -1)).to.not.include(
      turn.id,
    );
  }

  const userOf = (turnId: string) => turnId.split("_")[0]?.replace("turn-", "");

  it("dispatches users round-robin, each user's turns in submission order", async () => {
    const s = scheduler({ dispatchPrefetch: 100 });
    const turns = [
      ...Array.from({ length: 5 }, () => turnOf("a")),
      ...Array.from({ length: 3 }, () => turnOf("b")),
      ...Array.from({ length: 2 }, () => turnOf("c")),
    ];
    await queueTurns(s, turns);
    await s.dispatcher.kick();

    const order = await dispatched();
    expect(order.map(userOf)).to.deep.equal(["a", "b", "c", "a", "b", "c", "a", "b", "a", "a"]);
    for (const user of ["a", "b", "c"]) {
      const mine = turns.filter((t) => t.userId === user).map((t) => t.id);
      expect(order.filter((id) => userOf(id) === user)).to.deep.equal(mine);
    }
  });

  it("shares dispatch by tier weight (1:2:4)", async () => {
    const s = scheduler({
      dispatchPrefetch: 70,
      tiers: { one: { weight: 1 }, two: { weight: 2 }, four: { weight: 4 } },
      userTiers: { w1: "one", w2: "two", w4: "four" },
    });
    for (const user of ["w1", "w2", "w4"]) {
      await queueTurns(
        s,
        Array.from({ length: 60 }, () => turnOf(user)),
      );
    }
    const countedBefore = await dispatchedByTier();
    await s.dispatcher.kick();
    const countedAfter = await dispatchedByTier();
    const counts: Record<string, number> = { w1: 0, w2: 0, w4: 0 };
    for (const id of await dispatched()) {
      const user = userOf(id) as string;
      counts[user] = (counts[user] ?? 0) + 1;
    }
    expect(counts).to.deep.equal({ w1: 10, w2: 20, w4: 40 });
    // The dashboards' fairness panel sees the same split, by tier.
    const grew = (tier: string) => (countedAfter[tier] ?? 0) - (countedBefore[tier] ?? 0);
    expect({ one: grew("one"), two: grew("two"), four: grew("four") }).to.deep.equal({
      one: 10,
      two: 20,
      four: 40,
    });
  });

  it("puts a newcomer's turn next, not behind a backlog", async () => {
    const s = scheduler({ dispatchPrefetch: 5 });
    await queueTurns(
      s,
      Array.from({ length: 50 }, () => turnOf("heavy")),
    );
    await s.dispatcher.kick();
    expect(await dispatched()).to.have.length(5);

    const light = turnOf("light");
    await queueTurns(s, [light]);
    await s.dispatcher.kick(1); // a worker frees one slot
    const order = await dispatched();
    expect(order).to.have.length(6);
    expect(order[5]).to.equal(light.id);
  });

  it("caps a user's running turns and dispatches the next when one ends", async () => {
    const s = scheduler({ dispatchPrefetch: 100, maxRunningPerUser: 2 });
    const turns = Array.from({ length: 5 }, () => turnOf("capped"));
    const other = turnOf("other");
    await queueTurns(s, [...turns, other]);
    await s.dispatcher.kick();
    expect(await dispatched()).to.have.members([turns[0]?.id, turns[1]?.id, other.id]);

    await finish(s, turns[0] as TurnRef);
    await s.dispatcher.kick();
    expect(await dispatched()).to.have.members([turns[1]?.id, other.id, turns[2]?.id]);
    expect(await s.fair.endTurn(turns[0] as TurnRef, null), "a second end frees nothing").to.equal(
      false,
    );
  });

  it("keeps a blocked user's pass, and lets it back in no earlier than the current round", async () => {
    const s = scheduler({
      dispatchPrefetch: 100,
      tiers: { capped: { weight: 1, maxRunningPerUser: 2 } },
      userTiers: { x: "capped" },
    });
    const xs = Array.from({ length: 4 }, () => turnOf("x"));
    await queueTurns(s, [...xs, ...Array.from({ length: 5 }, () => turnOf("y"))]);
    await s.dispatcher.kick();
    // x0 y0 x1 y1, then x is at its cap: y2 y3 y4.
    expect((await dispatched()).map(userOf)).to.deep.equal(["x", "y", "x", "y", "y", "y", "y"]);
    expect(await fx.redis.hget(`${fx.keys.fairPrefix}pass`, "x")).to.equal("2");

    await finish(s, xs[0] as TurnRef);
    // Back at max(its pass 2, the last dispatch's pass 4): no credit for the time it was capped.
    expect(await fx.redis.zscore(`${fx.keys.fairPrefix}ready`, "x")).to.equal("4");
  });

  it("runs a session's turns one at a time, and holds the user's later turns behind them", async () => {
    const s = scheduler({ dispatchPrefetch: 100 });
    const session = uniqueId("sess");
    const first = turnOf("u", session);
    const second = turnOf("u", session);
    const elsewhere = turnOf("u");
    await queueTurns(s, [first, second, elsewhere]);
    await s.dispatcher.kick();
    expect(await dispatched()).to.deep.equal([first.id]);

    await finish(s, first);
    await s.dispatcher.kick();
    expect(await dispatched()).to.deep.equal([second.id, elsewhere.id]);
  });

  it("ends a turn in one step: its lease, its place in the session, its slot", async () => {
    const s = scheduler({ dispatchPrefetch: 100 });
    const session = uniqueId("sess");
    const [first, second] = [turnOf("e", session), turnOf("e", session)];
    await queueTurns(s, [first, second]);
    await s.dispatcher.kick();
    const leases = new SessionLeases(fx.redis, fx.keys, 30_000);
    const taken = await leases.acquire(session, first.id, "tok");
    expect(taken.kind).to.equal("acquired");

    expect(await s.fair.endTurn(first, `${first.id}:other-token`)).to.equal(true);
    expect(await leases.holder(session), "another lease is not ours to drop").to.equal(
      `${first.id}:tok`,
    );
    await s.fair.endTurn(first, null);
    expect(await leases.holder(session), "null drops any attempt of the turn").to.equal(null);
    expect(await fx.redis.lrange(fx.keys.sessionOrder(session), 0, -1)).to.deep.equal([second.id]);
    expect(await fx.redis.scard(`${fx.keys.fairPrefix}run:e`)).to.equal(0);
  });

  it("puts a turn admitted again before its session's later turns, so the user is not stuck", async () => {
    const s = scheduler({ dispatchPrefetch: 0 });
    const session = uniqueId("sess");
    const [first, later] = [turnOf("ra", session), turnOf("ra", session)];
    await queueTurns(s, [first, later]);
    // A cancel took it out of the FIFO but died before ending it; the repair admits it again.
    expect(await s.fair.withdraw(first)).to.equal(true);
    await queueTurns(s, [first]);
    expect(await fx.redis.lrange(`${fx.keys.fairPrefix}q:ra`, 0, -1)).to.deep.equal([
      first.id,
      later.id,
    ]);
    expect(await s.positions.of(first.id)).to.equal(0);
    expect(await fx.redis.zscore(`${fx.keys.fairPrefix}ready`, "ra")).to.not.equal(null);
  });

  it("admits idempotently and withdraws a waiting turn", async () => {
    const s = scheduler({ dispatchPrefetch: 0 });
    const turn = turnOf("w");
    const limits = s.tiers.limitsOf("w");
    expect(await s.fair.admit(turn, limits)).to.equal(true);
    expect(await s.fair.admit(turn, limits)).to.equal(false);
    expect(await fx.redis.lrange(fx.keys.sessionOrder(turn.sessionId), 0, -1)).to.deep.equal([
      turn.id,
    ]);
    expect(await s.fair.stateOf(turn)).to.equal("waiting");

    expect(await s.fair.withdraw(turn)).to.equal(true);
    expect(await s.fair.withdraw(turn)).to.equal(false);
    expect(await s.fair.stateOf(turn)).to.equal("unknown");
    expect(await fx.redis.zscore(`${fx.keys.fairPrefix}backlog`, "w")).to.equal(null);
  });

  it("never double-dispatches or skips a turn with four dispatchers on four connections", async () => {
    const connections = Array.from({ length: 4 }, () => new Redis(REDIS_URL));
    try {
      const schedulers = connections.map((c) => scheduler({ dispatchPrefetch: 10_000 }, c));
      const turns: TurnRef[] = [];
      for (let u = 0; u < 20; u++) {
        for (let i = 0; i < 30; i++) turns.push(turnOf(`user${u}`));
      }
      // Admit and dispatch interleaved, from all four at once.
      await Promise.all(
        schedulers.map(async (s, i) => {
          for (let k = i; k < turns.length; k += 4) {
            const turn = turns[k] as TurnRef;
            await s.fair.admit(turn, s.tiers.limitsOf(turn.userId));
            if (k % 7 === 0) await s.dispatcher.kick();
          }
          await s.dispatcher.kick();
        }),
      );
      await Promise.all(schedulers.map((s) => s.dispatcher.kick()));

      const order = await dispatched();
      expect(order).to.have.length(turns.length);
      expect(new Set(order).size).to.equal(turns.length);
      const f = fx.keys.fairPrefix;
      expect(await fx.redis.zcard(`${f}backlog`)).to.equal(0);
      expect(await fx.redis.hlen(`${f}meta`)).to.equal(0);
      for (let u = 0; u < 20; u++) {
        expect(await fx.redis.scard(`${f}run:user${u}`)).to.equal(30);
        // Every turn of the user was dispatched exactly once.
        const mine = order.filter((id) => userOf(id) === `user${u}`);
        const submitted = turns.filter((t) => t.userId === `user${u}`).map((t) => t.id);
        expect([...mine].sort()).to.deep.equal([...submitted].sort());
      }
    } finally {
      await Promise.all(connections.map((c) => c.quit()));
    }
  });

  it("estimates queue_position as the other users' turns dispatched first", async () => {
    const s = scheduler({ dispatchPrefetch: 0 });
    const a = Array.from({ length: 3 }, () => turnOf("pa"));
    const b = Array.from({ length: 5 }, () => turnOf("pb"));
    await queueTurns(s, [...a, ...b]);
    // Round-robin from here: pa1 pb1 pa2 pb2 pa3 pb3 pb4 pb5.
    expect(await s.positions.of(a[0]?.id as string)).to.equal(0);
    expect(await s.positions.of(b[0]?.id as string)).to.equal(1);
    expect(await s.positions.of(a[2]?.id as string)).to.equal(2);
    expect(await s.positions.of(b[4]?.id as string)).to.equal(3);
    expect(await s.positions.of("turn-unknown")).to.equal(null);
  });

  it("repairs counters that drifted and unblocks the user", async () => {
    const s = scheduler({ dispatchPrefetch: 100, maxRunningPerUser: 1 });
    const [first, second] = [turnOf("r"), turnOf("r")];
    await queueTurns(s, [first, second]);
    await s.dispatcher.kick();
    expect(await dispatched()).to.deep.equal([first.id]);
    // A crash mid-release: the slot set lost the turn but the counters and readiness did not move.
    await fx.redis.srem(`${fx.keys.fairPrefix}run:r`, first.id);
    await s.dispatcher.kick();
    expect(await dispatched()).to.deep.equal([first.id]);

    await s.fair.recount("r");
    expect(await fx.redis.zscore(`${fx.keys.fairPrefix}running`, "r")).to.equal(null);
    await s.dispatcher.kick();
    expect(await dispatched()).to.deep.equal([first.id, second.id]);
  });
});
