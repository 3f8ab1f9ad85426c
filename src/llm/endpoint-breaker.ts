/**
 * One circuit breaker per model endpoint (origin + path of a model's `baseUrl`), shared by every
 * model on that endpoint in the process: after `breakerThreshold` transient failures in a row,
 * calls to the endpoint fail at once for `breakerHalfOpenAfterMs`; then one trial call goes
 * through, and its outcome closes the circuit or opens it again.
 *
 * Invariants:
 * - only transient provider failures count: 5xx, network errors, timeouts, empty answers. A 429
 *   (the model gate holds rate-limited models), other 4xx and aborts neither count nor reset the
 *   count of failures in a row;
 * - while the circuit is open, and while the half-open trial call is in flight, a call fails
 *   before it reaches the network, with a retryable `circuit_open` LlmError (the turn's retry
 *   loop backs off as for any transient failure, and a turn that gives up fails `llm_unavailable`);
 * - a trial call that ends in an error that does not count (429, 4xx, abort) closes the circuit,
 *   as cockatiel does: the endpoint answered, or the trial proved nothing either way;
 * - an endpoint's settings are those of the first model that acquires it; holders (ModelClients)
 *   release their breakers when they close, and an endpoint nobody holds is forgotten.
 */
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from "cockatiel";
import { Gauge } from "prom-client";
import { metricsRegistry } from "../obs/metrics.js";
import { LlmError } from "./llm-error.js";

export type BreakerState = "closed" | "open" | "half_open";

/** A cockatiel breaker's state in the farm's terms (isolated counts as open). */
export function breakerStateOf(policy: CircuitBreakerPolicy): BreakerState {
  switch (policy.state) {
    case CircuitState.Closed:
      return "closed";
    case CircuitState.HalfOpen:
      return "half_open";
    default:
      return "open";
  }
}

export interface EndpointBreakerState {
  /** Origin and path of the endpoint, e.g. `https://api.openai.com/v1` (no credentials). */
  endpoint: string;
  state: BreakerState;
}

export interface BreakerSettings {
  /** Counted failures in a row that open the circuit. */
  threshold: number;
  /** How long the circuit stays open before one trial call goes through. */
  halfOpenAfterMs: number;
}

/** The endpoint a base URL belongs to: origin and path, without credentials, query or a final "/". */
export function endpointOf(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
}

/** Whether a failed call says something about the endpoint's health. */
export function countsAsEndpointFailure(err: unknown): boolean {
  if (!(err instanceof LlmError)) return false;
  switch (err.kind) {
    case "network":
    case "timeout":
    case "empty_response":
      return true;
    case "provider_error":
      // 408 and 409 are retried like provider errors, but a 4xx is an answer, not an outage.
      return err.status === null || err.status >= 500;
    default:
      return false;
  }
}

export class EndpointBreaker {
  private readonly policy: CircuitBreakerPolicy;
  private openedAt = 0;

  constructor(
    readonly endpoint: string,
    readonly settings: BreakerSettings,
  ) {
    this.policy = circuitBreaker(handleWhen(countsAsEndpointFailure), {
      halfOpenAfter: settings.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(settings.threshold),
    });
    this.policy.onBreak(() => {
      this.openedAt = Date.now();
    });
  }

  /** An open circuit reads "open" until the next call after `halfOpenAfterMs` starts the trial. */
  get state(): BreakerState {
    return breakerStateOf(this.policy);
  }

  /** The error a call started now fails with at once, or null if it would be let through. */
  openError(): LlmError | null {
    const state = this.policy.state;
    if (state === CircuitState.Closed) return null;
    if (state === CircuitState.HalfOpen) {
      return this.failFast("circuit half open, a trial call is in flight");
    }
    const waitMs = this.openedAt + this.settings.halfOpenAfterMs - Date.now();
    if (waitMs <= 0 && state === CircuitState.Open) return null;
    return this.failFast(`circuit open, next trial in ${Math.max(0, Math.ceil(waitMs))} ms`);
  }

  /** Runs one call through the breaker; rejects at once with `circuit_open` while it is open. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    const blocked = this.openError();
    if (blocked) throw blocked;
    try {
      return await this.policy.execute(() => call());
    } catch (err) {
      if (err instanceof BrokenCircuitError) {
        throw this.openError() ?? this.failFast("circuit open");
      }
      throw err;
    }
  }

  private failFast(why: string): LlmError {
    return new LlmError("circuit_open", `model endpoint ${this.endpoint} is failing; ${why}`);
  }
}

/** The breakers of one process, by endpoint, reference counted by their holders. */
export class EndpointBreakers {
  private readonly entries = new Map<string, { breaker: EndpointBreaker; holders: number }>();

  /** The endpoint's breaker; the first holder's settings create it. Pair with `release`. */
  acquire(baseUrl: string, settings: BreakerSettings): EndpointBreaker {
    const endpoint = endpointOf(baseUrl);
    let entry = this.entries.get(endpoint);
    if (!entry) {
      entry = { breaker: new EndpointBreaker(endpoint, settings), holders: 0 };
      this.entries.set(endpoint, entry);
    }
    entry.holders++;
    return entry.breaker;
  }

  release(breaker: EndpointBreaker): void {
    const entry = this.entries.get(breaker.endpoint);
    if (entry?.breaker !== breaker) return;
    if (--entry.holders <= 0) this.entries.delete(breaker.endpoint);
  }

  /** Every endpoint in use and its circuit's state, sorted by endpoint (for metrics). */
  states(): EndpointBreakerState[] {
    return [...this.entries.values()]
      .map(({ breaker }) => ({ endpoint: breaker.endpoint, state: breaker.state }))
      .sort((a, b) => a.endpoint.localeCompare(b.endpoint));
  }
}

/** The process's breakers: every ModelClients uses these unless a test passes its own. */
export const endpointBreakers = new EndpointBreakers();

/** The state of every model endpoint's circuit in this process, e.g. for a metrics gauge. */
export function endpointBreakerStates(): EndpointBreakerState[] {
  return endpointBreakers.states();
}

/** The breaker gauges' encoding (model endpoints here, tool sources in tool-metrics.ts). */
export const BREAKER_STATE_VALUE: Record<BreakerState, number> = {
  closed: 0,
  half_open: 1,
  open: 2,
};

/** Read at scrape time; endpoints come from the configuration, so the label stays bounded. */
new Gauge({
  name: "farm_llm_breaker_state",
  help: "Circuit breaker state per model endpoint: 0 closed, 1 half-open, 2 open",
  labelNames: ["endpoint"] as const,
  registers: [metricsRegistry],
  collect() {
    this.reset();
    for (const { endpoint, state } of endpointBreakerStates()) {
      this.set({ endpoint }, BREAKER_STATE_VALUE[state]);
    }
  },
});
