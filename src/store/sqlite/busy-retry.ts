/**
 * Runs a SQLite operation, retrying it while another process holds the write lock — waiting
 * asynchronously between attempts, so the event loop keeps serving while the lock is busy.
 *
 * Invariant: the operation is retried only when it failed with SQLITE_BUSY, which SQLite
 * reports before changing anything (a transaction that cannot take its lock never starts); when
 * the lock stays taken past BUSY_GIVE_UP_MS the store counts as unavailable.
 */
import { StoreUnavailableError } from "../errors.js";

const FIRST_WAIT_MS = 0.5;
const MAX_WAIT_MS = 8;
/** Give up (and let the caller answer 503) after this long: the lock holder is stuck. */
const BUSY_GIVE_UP_MS = 5_000;

export async function retryWhileBusy<T>(operation: () => T): Promise<T> {
  const deadline = Date.now() + BUSY_GIVE_UP_MS;
  for (let waitMs = FIRST_WAIT_MS; ; waitMs = Math.min(MAX_WAIT_MS, waitMs * 2)) {
    try {
      return operation();
    } catch (err) {
      if (!isBusy(err)) throw err;
      if (Date.now() > deadline) {
        throw new StoreUnavailableError(
          `the SQLite store stayed locked by another connection for over ${BUSY_GIVE_UP_MS} ms`,
          { cause: err },
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("SQLITE_BUSY") || code === "SQLITE_LOCKED");
}
