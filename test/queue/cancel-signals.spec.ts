/**
 * Cancel signals against a real Redis: `requestCancel` sets the turn's flag (with a TTL) and
 * broadcasts it; a `CancelListener` on its own subscriber connection calls the watcher of exactly
 * that turn; unwatching stops delivery; `isCancelRequested` reads the flag.
 *
 * Pub/sub delivers one connection's messages in publish order, so "X was not called" is checked
 * by publishing a cancel for a sentinel turn after X's and waiting for the sentinel's watcher.
 */
import { expect } from "chai";
import { Redis } from "ioredis";
import {
  CancelListener,
  isCancelRequested,
  requestCancel,
} from "../../src/queue/cancel-signals.js";
import { type RedisKeys, redisKeys } from "../../src/redis/keys.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";
import { testPrefix, uniqueId } from "./helpers.js";

const ONE_DAY_S = 86_400;

/** A watcher that counts its calls and lets a test await the first one. */
function spy(): { fn: () => void; calls: () => number; called: Promise<void> } {
  let calls = 0;
  let resolve: () => void = () => undefined;
  const called = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    fn: () => {
      calls += 1;
      resolve();
    },
    calls: () => calls,
    called,
  };
}

describe("cancel signals", () => {
  const prefix = testPrefix("cancel");
  const keys: RedisKeys = redisKeys(prefix);
  let redis: Redis;
  let subscriber: Redis;
  let listener: CancelListener;

  before(async () => {
    redis = new Redis(REDIS_URL);
    subscriber = new Redis(REDIS_URL);
    listener = new CancelListener(subscriber, keys);
    await listener.start();
  });

  after(async () => {
    // `${prefix}*` also covers the foreign prefix one test publishes under.
    await deleteKeys(redis, `${prefix}*`);
    await subscriber.quit();
    await redis.quit();
  });

  it("requestCancel sets the turn's flag with a TTL; isCancelRequested reads it", async () => {
    const turn = uniqueId("turn");
    const other = uniqueId("turn");
    expect(await isCancelRequested(redis, keys, turn)).to.equal(false);

    await requestCancel(redis, keys, turn);

    expect(await isCancelRequested(redis, keys, turn)).to.equal(true);
    expect(await isCancelRequested(redis, keys, other)).to.equal(false);
    const ttl = await redis.ttl(keys.turnCancel(turn));
    expect(ttl).to.be.greaterThan(0);
    expect(ttl).to.be.at.most(ONE_DAY_S);
  });

  it("calls the watcher of exactly the cancelled turn", async () => {
    const turn = uniqueId("turn");
    const other = uniqueId("turn");
    const mine = spy();
    const theirs = spy();
    const unwatchMine = listener.watch(turn, mine.fn);
    const unwatchTheirs = listener.watch(other, theirs.fn);
    try {
      await requestCancel(redis, keys, turn);
      await mine.called;
      expect(mine.calls()).to.equal(1);
      expect(theirs.calls()).to.equal(0);
    } finally {
      unwatchMine();
      unwatchTheirs();
    }
  });

  it("does not call a watcher after its unwatch", async () => {
    const turn = uniqueId("turn");
    const sentinel = uniqueId("turn");
    const gone = spy();
    const last = spy();
    listener.watch(turn, gone.fn)();
    const unwatchSentinel = listener.watch(sentinel, last.fn);
    try {
      await requestCancel(redis, keys, turn);
      await requestCancel(redis, keys, sentinel);
      await last.called;
      expect(gone.calls()).to.equal(0);
    } finally {
      unwatchSentinel();
    }
  });

  it("keeps a newer watcher of the turn when an older one unwatches", async () => {
    const turn = uniqueId("turn");
    const older = spy();
    const newer = spy();
    const unwatchOlder = listener.watch(turn, older.fn);
    const unwatchNewer = listener.watch(turn, newer.fn);
    unwatchOlder();
    try {
      await requestCancel(redis, keys, turn);
      await newer.called;
      expect(older.calls()).to.equal(0);
    } finally {
      unwatchNewer();
    }
  });

  it("ignores cancels broadcast under another prefix", async () => {
    const turn = uniqueId("turn");
    const foreignKeys = redisKeys(`${prefix}-other`);
    // The listener's connection also hears the foreign channel; only its own may dispatch.
    await subscriber.subscribe(foreignKeys.cancelChannel);
    const watcher = spy();
    const sentinel = spy();
    const sentinelTurn = uniqueId("turn");
    const unwatch = listener.watch(turn, watcher.fn);
    const unwatchSentinel = listener.watch(sentinelTurn, sentinel.fn);
    try {
      await requestCancel(redis, foreignKeys, turn);
      await requestCancel(redis, keys, sentinelTurn);
      await sentinel.called;
      expect(watcher.calls()).to.equal(0);
    } finally {
      unwatch();
      unwatchSentinel();
      await subscriber.unsubscribe(foreignKeys.cancelChannel);
    }
  });
});
