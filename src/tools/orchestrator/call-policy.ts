/**
 * The resilience policies around one tool call (cockatiel): bulkhead → circuit breaker → retry →
 * timeout → the tool. Breakers and bulkheads are per tool source (`breakerKey`) and shared by
 * every turn of the process; retry and timeout are per call.
 *
 * Invariants:
 * - only failures the tool marks `transient`, and timeouts, count against a breaker: a model's
 *   bad path or a command's non-zero exit says nothing about the source's health;
 * - the breaker counts calls, not tries: it sees a failure only once the retries gave up, so a
 *   flaky source that retries mend keeps its breaker closed (measured: with the breaker inside
 *   the retries, a source failing 20% of tries tripped it within seconds);
 * - only transient failures of idempotent tools are retried (exponential backoff with jitter);
 *   timeouts are not (the call already used its whole bound), nor is an open breaker;
 * - an open breaker or a full bulkhead fails the call at once, without reaching the tool;
 * - a call whose turn is aborted settles as `aborted`, whatever the tool was doing; the tool's
 *   own signal is aborted too, so it stops.
 */
import {
  BrokenCircuitError,
  type BulkheadPolicy,
  BulkheadRejectedError,
  bulkhead,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  handleType,
  handleWhen,
  type IPolicy,
  noop,
  type RetryPolicy,
  retry,
  TaskCancelledError,
  TimeoutStrategy,
  timeout,
} from "cockatiel";
import type { BreakerState } from "../../llm/endpoint-breaker.js";
import type { ToolEntry } from "../source.js";
import type { ToolOutput } from "../tool.js";

export interface CallPolicySettings {
  maxRetries: number;
  retryInitialDelayMs: number;
  retryMaxDelayMs: number;
  breakerThreshold: number;
  breakerHalfOpenAfterMs: number;
  bulkheadConcurrency: number;
  bulkheadQueue: number;
}

export type { BreakerState };

export interface GuardedOutcome {
  output: ToolOutput;
  /** Tries that reached the tool (0 when a breaker or bulkhead refused the call). */
  attempts: number;
  timedOut: boolean;
  aborted: boolean;
  /** The source's breaker after the call. */
  breaker: BreakerState;
}

export interface PolicyObserver {
  onRetry?(breakerKey: string): void;
  onBreakerState?(breakerKey: string, state: BreakerState): void;
}

/** A transient failure, thrown so that retry and breaker see it; unwrapped afterwards. */
class TransientFailure extends Error {
  constructor(readonly output: ToolOutput) {
    super(output.error ?? "transient failure");
  }
}

class CallTimedOut extends Error {}

const isTransient = handleType(TransientFailure);
const countsAgainstBreaker = handleWhen(
  (err) => err instanceof TransientFailure || err instanceof CallTimedOut,
);

interface SourcePolicies {
  breaker: CircuitBreakerPolicy;
  bulkhead: BulkheadPolicy;
}

export class ToolCallPolicies {
  private readonly perSource = new Map<string, SourcePolicies>();
  private readonly retry: RetryPolicy;

  constructor(
    private readonly settings: CallPolicySettings,
    private readonly observer: PolicyObserver = {},
  ) {
    this.retry = retry(isTransient, {
      maxAttempts: settings.maxRetries,
      backoff: new ExponentialBackoff({
        initialDelay: settings.retryInitialDelayMs,
        maxDelay: settings.retryMaxDelayMs,
      }),
    });
  }

  /**
   * Runs `invoke` under the policies of `entry`'s source. `invoke` gets the signal of one try
   * (aborted at its timeout or when `signal` aborts). Never throws for the tool's failures.
   */
  async run(
    entry: ToolEntry,
    timeoutMs: number,
    signal: AbortSignal,
    invoke: (signal: AbortSignal) => Promise<ToolOutput>,
  ): Promise<GuardedOutcome> {
    const { breaker, bulkhead: slots } = this.policiesOf(entry.breakerKey);
    const retries: IPolicy = entry.idempotent ? this.retry : noop;
    let attempts = 0;
    let timedOut = false;
    const oneTry = async (): Promise<ToolOutput> => {
      if (attempts > 0) this.observer.onRetry?.(entry.breakerKey);
      attempts++;
      const bound = timeout(timeoutMs, {
        strategy: TimeoutStrategy.Aggressive,
        abortOnReturn: true,
      });
      try {
        const output = await bound.execute((_ctx, trySignal) => invoke(trySignal), signal);
        if (!output.ok && output.transient && !signal.aborted) throw new TransientFailure(output);
        return output;
      } catch (err) {
        if (err instanceof TaskCancelledError && !signal.aborted) {
          timedOut = true;
          throw new CallTimedOut(`timed out after ${timeoutMs} ms`);
        }
        throw err;
      }
    };

    let output: ToolOutput;
    try {
      output = await slots.execute(
        () => breaker.execute(() => retries.execute(oneTry, signal), signal),
        signal,
      );
    } catch (err) {
      output = this.failureOutput(err, entry, signal);
    }
    const aborted = signal.aborted;
    if (aborted) output = { ok: false, data: null, error: "aborted" };
    return { output, attempts, timedOut: timedOut && !aborted, aborted, breaker: stateOf(breaker) };
  }

  /** Every source's breaker state (for metrics and the tool catalogue). */
  breakerStates(): { breakerKey: string; state: BreakerState }[] {
    return [...this.perSource].map(([breakerKey, p]) => ({
      breakerKey,
      state: stateOf(p.breaker),
    }));
  }

  private failureOutput(err: unknown, entry: ToolEntry, signal: AbortSignal): ToolOutput {
    if (signal.aborted) return { ok: false, data: null, error: "aborted" };
    if (err instanceof TransientFailure) return err.output;
    if (err instanceof CallTimedOut) {
      return {
        ok: false,
        data: null,
        error: `${entry.displayName} ${err.message}`,
        transient: true,
      };
    }
    if (err instanceof BrokenCircuitError) {
      return {
        ok: false,
        data: null,
        error:
          `${entry.source} is failing (${this.settings.breakerThreshold} failures in a row); ` +
          `calls to it are refused for up to ${this.settings.breakerHalfOpenAfterMs} ms`,
        transient: true,
      };
    }
    if (err instanceof BulkheadRejectedError) {
      return {
        ok: false,
        data: null,
        error: `${entry.source} is busy: too many calls waiting; try again shortly`,
        transient: true,
      };
    }
    throw err;
  }

  private policiesOf(breakerKey: string): SourcePolicies {
    let policies = this.perSource.get(breakerKey);
    if (!policies) {
      const breaker = circuitBreaker(countsAgainstBreaker, {
        halfOpenAfter: this.settings.breakerHalfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.settings.breakerThreshold),
      });
      breaker.onStateChange(() => this.observer.onBreakerState?.(breakerKey, stateOf(breaker)));
      policies = {
        breaker,
        bulkhead: bulkhead(this.settings.bulkheadConcurrency, this.settings.bulkheadQueue),
      };
      this.perSource.set(breakerKey, policies);
    }
    return policies;
  }
}

function stateOf(breaker: CircuitBreakerPolicy): BreakerState {
  switch (breaker.state) {
    case CircuitState.Closed:
      return "closed";
    case CircuitState.HalfOpen:
      return "half_open";
    default:
      return "open";
  }
}
