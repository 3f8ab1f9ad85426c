/**
 * The admission gate against a real Redis: reservations count toward the user's queue limit
 * until admitted or given back, a busy or reserved session refuses `on_busy: "reject"`, and the
 * two overload signals refuse with 503. Also: the dispatch window follows registered worker
 * capacity, and tiers resolve safely.
 */
import { expect } from "chai";
import { ConfigSchema, type FarmConfig } from "../../src/config/schema.js";
import { FarmError } from "../../src/contract/errors.js";
import { createLogger } from "../../src/obs/logger.js";
import type { TurnRef } from "../../src/scheduler/fair-queue.js";
import type { Scheduler } from "../../src/scheduler/scheduler.js";
import { Tiers } from "../../src/scheduler/tiers.js";
import { WorkerCapacity } from "../../src/scheduler/worker-capacity.js";
import { uniqueId } from "../queue/helpers.js";
import { schedulerFixture, schedulerFor } from "./helpers.js";

describe("Admission gate and dispatch window", () => {
  const fx = schedulerFixture("gate");

  const scheduler = (settings: Partial<FarmConfig["scheduler"]> = {}): Scheduler =>
    schedulerFor(fx.redis, fx.keys, settings);

  async function refusal(attempt: Promise<unknown>): Promise<FarmError> {
    try {
      await attempt;
    } catch (err) {
      if (err instanceof FarmError) return err;
      throw err;
    }
    throw new Error("expected a refusal");
  }

  const turnOf = (userId: string, sessionId = uniqueId("sess")): TurnRef => ({
    id: uniqueId("turn"),
    sessionId,
    userId,
  });

  it("counts reservations toward the user's queue limit until admitted or given back", async () => {
    const s = scheduler({ maxQueuedPerUser: 2, dispatchPrefetch: 0 });
    const first = await s.admission.reserve("u", null, "enqueue");
    await s.admission.reserve("u", null, "enqueue");
    const full = await refusal(s.admission.reserve("u", null, "enqueue"));
    expect(full.status).to.equal(429);
    expect(full.code).to.equal("user_queue_full");
    expect(full.options.retryAfterS).to.equal(5);
    expect(full.options.details).to.deep.include({ queued: 2, limit: 2 });
    await s.admission.reserve("someone-else", null, "enqueue");

    await s.admission.cancelReservation(first);
    const again = await s.admission.reserve("u", null, "enqueue");
    await s.admission.admit(turnOf("u"), again);
    // Admitted (1 waiting) + one reservation = 2: still full.
    expect((await refusal(s.admission.reserve("u", null, "enqueue"))).status).to.equal(429);
    expect((await s.gate.rejectionCounts()).user_queue_full).to.equal(2);
  });

  it("refuses on_busy reject for a session with a turn or a pending reservation", async () => {
    const s = scheduler({ dispatchPrefetch: 0 });
    const session = uniqueId("sess");
    const pending = await s.admission.reserve("u", session, "enqueue");
    const racing = await refusal(s.admission.reserve("u", session, "reject"));
    expect([racing.status, racing.code]).to.deep.equal([409, "session_busy"]);

    const turn = turnOf("u", session);
    await s.admission.admit(turn, pending);
    const busy = await refusal(s.admission.reserve("u", session, "reject"));
    expect(busy.options.details).to.deep.include({ blocking_turn_id: turn.id });
    // enqueue is always let through; another session is unaffected.
    await s.admission.reserve("u", session, "enqueue");
    await s.admission.reserve("u", uniqueId("sess"), "reject");
  });

  it("answers 503 when too many turns wait or a runnable turn waited too long", async () => {
    const deep = scheduler({ overloadQueueDepth: 2, dispatchPrefetch: 0 });
    await deep.admission.admit(turnOf("a"));
    await deep.admission.admit(turnOf("b"));
    const byDepth = await refusal(deep.admission.reserve("c", null, "enqueue"));
    expect([byDepth.status, byDepth.code]).to.deep.equal([503, "overloaded"]);
    expect(byDepth.options.details).to.deep.include({ reason: "overloaded_queue_depth" });
    expect(byDepth.options.retryAfterS).to.equal(15);

    const slow = scheduler({ overloadWaitMs: 50, dispatchPrefetch: 0 });
    await new Promise((resolve) => setTimeout(resolve, 80));
    const byWait = await refusal(slow.admission.reserve("c", null, "enqueue"));
    expect(byWait.options.details).to.deep.include({ reason: "overloaded_wait" });
  });

  it("sizes the dispatch window from live worker capacity plus prefetch", async () => {
    const s = scheduler({ dispatchPrefetch: 1, maxRunningPerUser: 100 });
    for (let i = 0; i < 10; i++) await s.fair.admit(turnOf("w"), s.tiers.limitsOf("w"));
    await s.dispatcher.kick();
    expect(await fx.queue.getWaitingCount()).to.equal(1);

    const logger = createLogger("test", "error");
    const capacity = new WorkerCapacity(fx.redis, fx.keys, 5, logger);
    await capacity.start();
    await s.dispatcher.kick();
    expect(await fx.queue.getWaitingCount()).to.equal(6);
    await capacity.stop();
    expect(await fx.redis.hlen(`${fx.keys.fairPrefix}workers`)).to.equal(0);
  });

  it("resolves tiers by own keys only", () => {
    const config = ConfigSchema.parse({
      scheduler: {
        tiers: { pro: { weight: 4, maxRunningPerUser: 9 } },
        userTiers: { alice: "pro" },
      },
    }).scheduler;
    const tiers = new Tiers(config);
    expect(tiers.limitsOf("alice")).to.deep.equal({
      tier: "pro",
      weight: 4,
      maxRunning: 9,
      maxQueued: 100,
    });
    expect(tiers.limitsOf("constructor")).to.deep.equal({
      tier: "default",
      weight: 1,
      maxRunning: 4,
      maxQueued: 100,
    });
    expect(() => ConfigSchema.parse({ scheduler: { userTiers: { bob: "gold" } } })).to.throw(
      /unknown tier/,
    );
  });
});
