/**
 * The read/write lock of one model round, with a cap on how many calls run at once.
 *
 * Invariants:
 * - `shared` holders run together (up to `maxParallel`); an `exclusive` holder runs alone;
 * - grants are strictly first come, first served: a waiting exclusive call holds back every
 *   call behind it, so a mutating call sees the effects of the calls before it and none of the
 *   calls after it (call order is the order of effects);
 * - a waiter whose signal aborts leaves the queue without ever holding the lock.
 */

export type LockMode = "shared" | "exclusive";

interface Waiter {
  mode: LockMode;
  grant: () => void;
}

export class RoundLock {
  private readonly queue: Waiter[] = [];
  private running = 0;
  private exclusiveHeld = false;

  constructor(private readonly maxParallel: number) {}

  /** Resolves with the release function once the lock is held; rejects if `signal` aborts first. */
  acquire(mode: LockMode, signal: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(signal.reason);
        return;
      }
      const waiter: Waiter = {
        mode,
        grant: () => {
          signal.removeEventListener("abort", onAbort);
          resolve(this.releaser(mode));
        },
      };
      const onAbort = () => {
        const at = this.queue.indexOf(waiter);
        if (at >= 0) this.queue.splice(at, 1);
        this.pump();
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
      this.pump();
    });
  }

  private releaser(mode: LockMode): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      if (mode === "exclusive") this.exclusiveHeld = false;
      this.pump();
    };
  }

  private pump(): void {
    for (let head = this.queue[0]; head !== undefined; head = this.queue[0]) {
      if (this.exclusiveHeld) return;
      if (head.mode === "exclusive" ? this.running > 0 : this.running >= this.maxParallel) return;
      this.queue.shift();
      this.running++;
      if (head.mode === "exclusive") this.exclusiveHeld = true;
      head.grant();
    }
  }
}
