/**
 * Stops a turn that is going nowhere with its tools, like wunder's tool-failure guard:
 * - the same call (tool and arguments) failing with the same error `threshold` times in a row (a
 *   success of that tool starts its count over). The arguments are part of it: five different
 *   commands that each exit 1, or five dead links, are work in progress, not a loop;
 * - more than `maxInvalidRounds` rounds in a row whose calls were all invalid (arguments that
 *   are not JSON even after repair, unknown tools, arguments the schema refuses): the model was
 *   told each time what was wrong and did not recover.
 *
 * The guard is fed every round's results in order, recorded rounds of a resumed turn included,
 * so a resumed attempt reaches the same verdict as the first would have.
 */

export interface GuardedCall {
  tool: string;
  /** The call's raw arguments, as the model wrote them. */
  args: string;
  ok: boolean;
  error?: string;
  /** The call never reached a tool: bad JSON, unknown tool, invalid arguments. */
  invalid: boolean;
  aborted?: boolean;
}

export interface GuardTrip {
  stopReason: "tool_failure_guard" | "invalid_tool_calls";
  message: string;
  meta: Record<string, unknown>;
}

/** Error texts differ in counts and ids; the fingerprint keeps what identifies the failure. */
const FINGERPRINT_CHARS = 200;

export class ToolFailureGuard {
  private readonly repeats = new Map<string, { fingerprint: string; count: number }>();
  private invalidRounds = 0;

  constructor(
    private readonly threshold: number,
    private readonly maxInvalidRounds: number,
  ) {}

  /** Feeds one round's calls; returns why the turn must stop, or null. */
  afterRound(calls: readonly GuardedCall[]): GuardTrip | null {
    if (calls.length === 0) return null;
    this.invalidRounds = calls.every((c) => c.invalid) ? this.invalidRounds + 1 : 0;
    if (this.invalidRounds > this.maxInvalidRounds) {
      return {
        stopReason: "invalid_tool_calls",
        message:
          `the model made only invalid tool calls in ${this.invalidRounds} rounds in a row ` +
          `(last: ${calls[0]?.error ?? "invalid call"})`,
        meta: { rounds: this.invalidRounds, limit: this.maxInvalidRounds },
      };
    }
    for (const call of calls) {
      if (call.aborted) continue;
      if (call.ok) {
        this.repeats.delete(call.tool);
        continue;
      }
      const fingerprint = `${call.args}\u0000${(call.error ?? "").slice(0, FINGERPRINT_CHARS)}`;
      const last = this.repeats.get(call.tool);
      const count = last?.fingerprint === fingerprint ? last.count + 1 : 1;
      this.repeats.set(call.tool, { fingerprint, count });
      if (count >= this.threshold) {
        return {
          stopReason: "tool_failure_guard",
          message: `tool ${call.tool} failed ${count} times in a row with the same error: ${fingerprint}`,
          meta: {
            tool: call.tool,
            repeat_count: count,
            threshold: this.threshold,
            tool_error: fingerprint,
          },
        };
      }
    }
    return null;
  }
}
