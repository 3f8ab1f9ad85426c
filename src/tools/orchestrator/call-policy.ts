/**
 * The resilience policies around one tool call (cockatiel): bulkhead → circuit breaker → timeout →
 * retries → the tool. Breakers and bulkheads are per tool source (`breakerKey`) and shared by
 * every turn of the process; the timeout and the retries are per call.
 *
 * Invariants:
 * - the timeout bounds the whole call, retries and their backoff included: a call never takes
 *   longer than its bound, whatever the tool or its retries do;
 * - only failures the tool marks `transient`, and timeouts, count against a breaker: a model's
 *   bad path or a command's non-zero exit says nothing about the source's health, nor does a
 *   remote site's failure (`remote`: a dead web site must not cut `web_fetch` off for everyone);
 * - the breaker counts calls, not tries: it sees a failure only once the retries gave up, so a
 *   flaky source that retries mend keeps its breaker closed (measured: with the breaker inside
 *   the retries, a source failing 20% of tries tripped it within seconds);
 * - only transient failures of idempotent tools are retried (exponential backoff with jitter);
 * - an open breaker, a half-open one whose trial call is still running, and a full bulkhead fail
 *   the call at once, without reaching the tool;
 * - a call whose turn is aborted settles as `aborted` at once, also while it waits for a bulkhead
 *   slot; the tool's own signal is aborted too, so it stops;
 * - a tool that throws (a bug) gives an `ok: false` "internal error" result, reported to the
 *   observer, never an exception that fails the turn.
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
import { type BreakerState, breakerStateOf } from "../../llm/endpoint-breaker.js";
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
  /** Called once when a source's breaker is made (`closed`, `created`) and on every change. */
  onBreakerState?(breakerKey: string, state: BreakerState, created?: boolean): void;
  /** A tool threw: a bug in the tool, logged with its stack. */
  onToolError?(entry: ToolEntry, err: Error): void;
}

/** A transient failure, thrown so that retry and breaker see it; unwrapped afterwards. */
class TransientFailure extends Error {
  constructor(readonly output: ToolOutput) {
    super(output.error ?? "transient failure");
  }
}

/** A remote site's transient failure: retried, but not held against the tool's source. */
class RemoteFailure extends TransientFailure {}

class CallTimedOut extends Error {}

class CallAborted extends Error {}

const isRetryable = handleType(TransientFailure);
const countsAgainstBreaker = handleWhen(
  (err) =>
    (err instanceof TransientFailure && !(err instanceof RemoteFailure)) ||
    err instanceof CallTimedOut,
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
    this.retry = retry(isRetryable, {
      maxAttempts: settings.maxRetries,
      backoff: new ExponentialBackoff({
        initialDelay: settings.retryInitialDelayMs,
        maxDelay: settings.retryMaxDelayMs,
      }),
    });
  }

  /**
   * Runs `invoke` under the policies of `entry`'s source. `invoke` gets the call's signal
   * (aborted at its timeout or when `signal` aborts). Never throws.
   */
  async run(
    entry: ToolEntry,
    timeoutMs: number,
    signal: AbortSignal,
    invoke: (signal: AbortSignal) => Promise<ToolOutput>,
  ): Promise<GuardedOutcome> {
    const { breaker, bulkhead: slots } = this.policiesOf(entry.breakerKey);
    const retries: IPolicy = entry.idempotent ? this.retry : noop;
    const bound = timeout(timeoutMs, { strategy: TimeoutStrategy.Aggressive, abortOnReturn: true });
    let attempts = 0;
    let timedOut = false;

    const tries = (callSignal: AbortSignal) =>
      retries.execute(async () => {
        if (attempts > 0) this.observer.onRetry?.(entry.breakerKey);
        attempts++;
        const output = await invoke(callSignal);
        // A tool that gave up because its signal fired at the bound timed out, whatever it says.
        if (callSignal.aborted && !signal.aborted) throw new CallTimedOut();
        if (!output.ok && output.transient && !signal.aborted) {
          throw output.remote ? new RemoteFailure(output) : new TransientFailure(output);
        }
        return output;
      }, callSignal);

    const guarded = async (): Promise<ToolOutput> => {
      if (signal.aborted) throw new CallAborted();
      // cockatiel would queue this call behind the half-open trial; refuse it like an open one.
      if (breaker.state === CircuitState.HalfOpen) throw new BrokenCircuitError();
      return breaker.execute(async () => {
        try {
          return await bound.execute((_ctx, callSignal) => tries(callSignal), signal);
        } catch (err) {
          if (
            err instanceof CallTimedOut ||
            (err instanceof TaskCancelledError && !signal.aborted)
          ) {
            timedOut = true;
            throw new CallTimedOut();
          }
          // Retries gave up on a remote site: its failure, not the source's.
          if (err instanceof RemoteFailure) return err.output;
          throw err;
        }
      }, signal);
    };

    let output: ToolOutput;
    try {
      output = await untilAborted(slots.execute(guarded, signal), signal);
    } catch (err) {
      output = this.failureOutput(err, entry, timeoutMs, signal);
    }
    const aborted = signal.aborted;
    if (aborted) output = { ok: false, data: null, error: "aborted" };
    return {
      output,
      attempts,
      timedOut: timedOut && !aborted,
      aborted,
      breaker: breakerStateOf(breaker),
    };
  }

  /** Every source's breaker state (for metrics and the tool catalogue). */
  breakerStates(): { breakerKey: string; state: BreakerState }[] {
    return [...this.perSource].map(([breakerKey, p]) => ({
      breakerKey,
      state: breakerStateOf(p.breaker),
    }));
  }

  private failureOutput(
    err: unknown,
    entry: ToolEntry,
    timeoutMs: number,
    signal: AbortSignal,
  ): ToolOutput {
    const failed = (error: string, transient: boolean): ToolOutput => ({
      ok: false,
      data: null,
      error,
      ...(transient ? { transient } : {}),
    });
    if (signal.aborted || err instanceof CallAborted) return failed("aborted", false);
    if (err instanceof TransientFailure) return err.output;
    if (err instanceof CallTimedOut) {
      return failed(`${entry.displayName} timed out after ${timeoutMs} ms`, true);
    }
    if (err instanceof BrokenCircuitError) {
      return failed(
        `${entry.source} is failing (${this.settings.breakerThreshold} failures in a row); ` +
          `calls to it are refused for up to ${this.settings.breakerHalfOpenAfterMs} ms`,
        true,
      );
    }
    if (err instanceof BulkheadRejectedError) {
      return failed(`${entry.source} is busy: too many calls waiting; try again shortly`, true);
    }
    const bug = err instanceof Error ? err : new Error(String(err));
    this.observer.onToolError?.(entry, bug);
    return failed(`internal error in ${entry.displayName}: ${bug.message}`, false);
  }

  private policiesOf(breakerKey: string): SourcePolicies {
    let policies = this.perSource.get(breakerKey);
    if (!policies) {
      const breaker = circuitBreaker(countsAgainstBreaker, {
        halfOpenAfter: this.settings.breakerHalfOpenAfterMs,
        breaker: new ConsecutiveBreaker(this.settings.breakerThreshold),
      });
      breaker.onStateChange(() =>
        this.observer.onBreakerState?.(breakerKey, breakerStateOf(breaker)),
      );
      policies = {
        breaker,
        bulkhead: bulkhead(this.settings.bulkheadConcurrency, this.settings.bulkheadQueue),
      };
      this.perSource.set(breakerKey, policies);
      this.observer.onBreakerState?.(breakerKey, "closed", true);
    }
    return policies;
  }
}

/** `work`, or a rejection as soon as `signal` aborts (the work itself is left to settle). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new CallAborted());
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new CallAborted());
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
