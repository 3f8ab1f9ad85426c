/**
 * When an MCP server that failed or was lost gets its next attempt: exponential backoff with
 * jitter, and the timer of that attempt.
 *
 * Invariants:
 * - the delay doubles per failed attempt from `initialMs` up to `maxMs`, jittered into [½, 1] of
 *   that; the count starts over only after a connection stayed up for `stableMs`;
 * - a schedule holds at most one pending attempt, its timer does not keep the process alive, and
 *   after `cancel()` none is pending.
 */

export interface RestartPolicy {
  /** Delay before the first new attempt. */
  initialMs: number;
  /** The delay doubles per failed attempt up to this. */
  maxMs: number;
  /** A connection that stayed up this long resets the backoff. */
  stableMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialMs: 500,
  maxMs: 30_000,
  stableMs: 60_000,
};

/** Delay before attempt `attempt` (0-based): `min(max, initial·2^attempt)`, jittered into [½, 1]. */
export function restartDelay(
  attempt: number,
  policy: RestartPolicy,
  random: () => number = Math.random,
): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** One connection's next attempt: its timer, and the count of failed attempts it backs off by. */
export class RestartSchedule {
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;

  constructor(private readonly policy: RestartPolicy) {}

  /** A connection that came up at `readyTime` is lost: if it stayed up `stableMs`, start over. */
  lostAfter(readyTime: number): void {
    if (Date.now() - readyTime >= this.policy.stableMs) this.attempt = 0;
  }

  /** Runs `attempt` after the next backoff delay, instead of an attempt already scheduled. */
  schedule(attempt: () => void): void {
    const delay = restartDelay(this.attempt, this.policy);
    this.attempt++;
    this.cancel();
    this.timer = setTimeout(() => {
      this.timer = null;
      attempt();
    }, delay);
    this.timer.unref();
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
