/**
 * RoundLock: shared holders run together up to the cap, an exclusive holder runs alone, grants
 * are first come first served, and an aborted waiter leaves the queue.
 */
import { expect } from "chai";
import { RoundLock } from "../../../src/tools/orchestrator/round-lock.js";

const never = new AbortController().signal;

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error("expected a rejection");
}

/** Lets queued promise callbacks run. */
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("tools: RoundLock", () => {
  it("lets shared holders run together up to the parallelism cap", async () => {
    const lock = new RoundLock(2);
    const granted: number[] = [];
    const releases = [1, 2, 3].map((n) =>
      lock.acquire("shared", never).then((release) => {
        granted.push(n);
        return release;
      }),
    );
    await tick();
    expect(granted).to.deep.equal([1, 2]);
    (await releases[0])?.();
    await tick();
    expect(granted).to.deep.equal([1, 2, 3]);
  });

  it("runs an exclusive holder alone and in call order", async () => {
    const lock = new RoundLock(4);
    const log: string[] = [];
    const hold = async (name: string, mode: "shared" | "exclusive") => {
      const release = await lock.acquire(mode, never);
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      release();
    };
    await Promise.all([
      hold("r1", "shared"),
      hold("r2", "shared"),
      hold("w", "exclusive"),
      hold("r3", "shared"),
    ]);
    expect(log).to.deep.equal([
      "start r1",
      "start r2",
      "end r1",
      "end r2",
      "start w",
      "end w",
      "start r3",
      "end r3",
    ]);
  });

  it("removes an aborted waiter without granting it", async () => {
    const lock = new RoundLock(1);
    const first = await lock.acquire("exclusive", never);
    const controller = new AbortController();
    const waiting = lock.acquire("shared", controller.signal);
    let laterGranted = false;
    const later = lock.acquire("shared", never).then((release) => {
      laterGranted = true;
      return release;
    });
    controller.abort(new Error("cancelled"));
    expect((await rejection(waiting)).message).to.equal("cancelled");
    first();
    await tick();
    expect(laterGranted).to.equal(true);
    (await later)();
  });

  it("refuses at once when the signal is already aborted", async () => {
    const lock = new RoundLock(1);
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    expect((await rejection(lock.acquire("shared", controller.signal))).message).to.equal("gone");
  });
});
