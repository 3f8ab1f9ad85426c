/**
 * SessionLeases against a real Redis: per-session submission order, the one lease of a running
 * turn (acquire / renew / release, hand-back, take-over by a later attempt of the same turn) and
 * the cancel flag winning over acquire. Each test uses its own session ids under a private prefix.
 */
import { expect } from "chai";
import { Redis } from "ioredis";
import { SessionLeases } from "../../src/queue/session-lease.js";
import { type RedisKeys, redisKeys } from "../../src/redis/keys.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";
import { testPrefix, uniqueId } from "./helpers.js";

const TTL_MS = 60_000;

describe("SessionLeases", () => {
  const prefix = testPrefix("lease");
  const keys: RedisKeys = redisKeys(prefix);
  let redis: Redis;
  let leases: SessionLeases;

  before(() => {
    redis = new Redis(REDIS_URL);
    leases = new SessionLeases(redis, keys, TTL_MS);
  });

  // Sessions are fresh per test, turn ids are not: drop cancel flags between tests.
  afterEach(async () => {
    await deleteKeys(redis, `${prefix}:t:*`);
  });

  after(async () => {
    await deleteKeys(redis, `${prefix}:*`);
    await redis.quit();
  });

  const order = (sessionId: string) => redis.lrange(keys.sessionOrder(sessionId), 0, -1);
  const holder = (sessionId: string) => redis.get(keys.sessionLease(sessionId));

  /**
   * A fresh session whose order holds these turns (the fair scheduler's admit writes the order
   * in production; see test/scheduler). Returns the session id.
   */
  async function sessionWith(...turns: string[]): Promise<string> {
    const sessionId = uniqueId("sess");
    await redis.rpush(keys.sessionOrder(sessionId), ...turns);
    return sessionId;
  }

  /** Acquires for a turn and fails the test unless it got the lease. */
  async function mustAcquire(sessionId: string, turnId: string, token: string): Promise<string> {
    const result = await leases.acquire(sessionId, turnId, token);
    if (result.kind !== "acquired") throw new Error(`expected acquired, got ${result.kind}`);
    return result.lease;
  }

  describe("acquire", () => {
    it("succeeds for the head only and stores the lease with a TTL", async () => {
      const s = await sessionWith("t-a", "t-b");
      expect(await leases.acquire(s, "t-b", "tok-b")).to.deep.equal({
        kind: "waiting",
        blocker: "t-a",
      });
      expect(await holder(s)).to.equal(null);

      expect(await leases.acquire(s, "t-a", "tok-a")).to.deep.equal({
        kind: "acquired",
        lease: "t-a:tok-a",
      });
      expect(await holder(s)).to.equal("t-a:tok-a");
      const ttl = await redis.pttl(keys.sessionLease(s));
      expect(ttl).to.be.greaterThan(0);
      expect(ttl).to.be.at.most(TTL_MS);
    });

    it("makes a second turn of the session wait for the holder", async () => {
      const s = await sessionWith("t-a", "t-b");
      await mustAcquire(s, "t-a", "tok-a");
      expect(await leases.acquire(s, "t-b", "tok-b")).to.deep.equal({
        kind: "waiting",
        blocker: "t-a",
      });
      expect(await holder(s)).to.equal("t-a:tok-a");
    });

    it("makes even the head wait while another turn holds the lease", async () => {
      // t-a leaves the order list without freeing the lease (a release by a stale lease).
      const s = await sessionWith("t-a", "t-b");
      await mustAcquire(s, "t-a", "tok-a");
      await leases.release(s, "t-a", "t-a:not-my-token");
      expect(await order(s)).to.deep.equal(["t-b"]);

      expect(await leases.acquire(s, "t-b", "tok-b")).to.deep.equal({
        kind: "waiting",
        blocker: "t-a",
      });
      expect(await holder(s)).to.equal("t-a:tok-a");
    });

    it("lets a new attempt of the same turn take over an earlier attempt's lease", async () => {
      const s = await sessionWith("t-a", "t-b");
      const first = await mustAcquire(s, "t-a", "attempt-1");
      const second = await mustAcquire(s, "t-a", "attempt-2");
      expect(second).to.equal("t-a:attempt-2");
      expect(await holder(s)).to.equal("t-a:attempt-2");
      expect(await leases.renew(s, "t-a", first)).to.equal("lost");
      expect(await leases.renew(s, "t-a", second)).to.equal("held");
    });

    it("does not let a turn whose id extends the holder's id take over", async () => {
      // Guards the `<turn>:` prefix match: "t-a" must not be read as the owner of "t-ab:…".
      const s = await sessionWith("t-ab", "t-a");
      await mustAcquire(s, "t-ab", "tok");
      await leases.release(s, "t-ab", "t-ab:stale");
      expect(await order(s)).to.deep.equal(["t-a"]);
      expect(await leases.acquire(s, "t-a", "tok-2")).to.deep.equal({
        kind: "waiting",
        blocker: "t-ab",
      });
      expect(await holder(s)).to.equal("t-ab:tok");
    });

    it("returns cancelled when the turn's cancel flag is set, even at the head", async () => {
      const s = await sessionWith("t-c");
      await redis.set(keys.turnCancel("t-c"), "1");
      expect(await leases.acquire(s, "t-c", "tok")).to.deep.equal({ kind: "cancelled" });
      expect(await holder(s)).to.equal(null);
    });

    it("returns cancelled for a cancelled turn that is not the head", async () => {
      const s = await sessionWith("t-d", "t-e");
      await redis.set(keys.turnCancel("t-e"), "1");
      expect(await leases.acquire(s, "t-e", "tok")).to.deep.equal({ kind: "cancelled" });
    });
  });

  describe("renew", () => {
    it("answers held for the holder and extends the TTL", async () => {
      const s = await sessionWith("t-a");
      const lease = await mustAcquire(s, "t-a", "tok");
      await redis.pexpire(keys.sessionLease(s), 1_000);
      expect(await leases.renew(s, "t-a", lease)).to.equal("held");
      expect(await redis.pttl(keys.sessionLease(s))).to.be.greaterThan(1_000);
    });

    it("answers lost for a lease that is not the current one, without extending it", async () => {
      const s = await sessionWith("t-a");
      await mustAcquire(s, "t-a", "tok");
      await redis.pexpire(keys.sessionLease(s), 5_000);
      expect(await leases.renew(s, "t-a", "t-a:other")).to.equal("lost");
      expect(await redis.pttl(keys.sessionLease(s))).to.be.at.most(5_000);
      expect(await holder(s)).to.equal("t-a:tok");
    });

    it("answers lost once the lease is gone", async () => {
      const s = await sessionWith("t-a");
      const lease = await mustAcquire(s, "t-a", "tok");
      await redis.del(keys.sessionLease(s));
      expect(await leases.renew(s, "t-a", lease)).to.equal("lost");
      expect(await holder(s)).to.equal(null);
    });

    it("answers cancel when the turn's cancel flag is set, and still extends the TTL", async () => {
      const s = await sessionWith("t-a");
      const lease = await mustAcquire(s, "t-a", "tok");
      await redis.pexpire(keys.sessionLease(s), 1_000);
      await redis.set(keys.turnCancel("t-a"), "1");
      expect(await leases.renew(s, "t-a", lease)).to.equal("cancel");
      expect(await redis.pttl(keys.sessionLease(s))).to.be.greaterThan(1_000);
    });
  });

  describe("release", () => {
    it("drops the turn, frees the lease and returns the next head, which can acquire", async () => {
      const s = await sessionWith("t-a", "t-b", "t-c");
      const lease = await mustAcquire(s, "t-a", "tok-a");
      expect(await leases.release(s, "t-a", lease)).to.equal("t-b");
      expect(await order(s)).to.deep.equal(["t-b", "t-c"]);
      expect(await holder(s)).to.equal(null);
      expect(await mustAcquire(s, "t-b", "tok-b")).to.equal("t-b:tok-b");
    });

    it("returns null when the session has no next turn", async () => {
      const s = await sessionWith("t-a");
      const lease = await mustAcquire(s, "t-a", "tok-a");
      expect(await leases.release(s, "t-a", lease)).to.equal(null);
      expect(await order(s)).to.deep.equal([]);
    });

    it("with handBack keeps the turn at the head and frees the lease for its next attempt", async () => {
      const s = await sessionWith("t-a", "t-b");
      const lease = await mustAcquire(s, "t-a", "attempt-1");
      expect(await leases.release(s, "t-a", lease, true)).to.equal("t-a");
      expect(await order(s)).to.deep.equal(["t-a", "t-b"]);
      expect(await holder(s)).to.equal(null);

      expect(await leases.acquire(s, "t-b", "tok-b")).to.deep.equal({
        kind: "waiting",
        blocker: "t-a",
      });
      expect(await mustAcquire(s, "t-a", "attempt-2")).to.equal("t-a:attempt-2");
    });

    it("with a wrong lease token leaves the holder's lease in place", async () => {
      const s = await sessionWith("t-a", "t-b");
      await mustAcquire(s, "t-a", "attempt-2");
      await leases.release(s, "t-a", "t-a:attempt-1");
      expect(await holder(s)).to.equal("t-a:attempt-2");
      await leases.release(s, "t-b", "t-b:whatever");
      expect(await holder(s)).to.equal("t-a:attempt-2");
    });

    it("without a lease drops any lease held by an attempt of the same turn", async () => {
      const s = await sessionWith("t-a", "t-b");
      await mustAcquire(s, "t-a", "attempt-7");
      expect(await leases.release(s, "t-a", null)).to.equal("t-b");
      expect(await holder(s)).to.equal(null);
      expect(await order(s)).to.deep.equal(["t-b"]);
    });

    it("without a lease leaves a lease held by another turn in place", async () => {
      const s = await sessionWith("t-a", "t-b");
      await mustAcquire(s, "t-a", "tok-a");
      expect(await leases.release(s, "t-b", null)).to.equal("t-a");
      expect(await holder(s)).to.equal("t-a:tok-a");
      expect(await order(s)).to.deep.equal(["t-a"]);
    });

    it("without a lease leaves a lease held by a turn whose id extends this one's", async () => {
      const s = await sessionWith("t-ab", "t-a");
      await mustAcquire(s, "t-ab", "tok");
      await leases.release(s, "t-a", null);
      expect(await holder(s)).to.equal("t-ab:tok");
    });
  });
});
