/**
 * Queue gauges, read from Redis at scrape time by one process only (the API): where turns are
 * and how old the oldest waiting one is. Workers do not export them, so a dashboard never sums
 * one queue several times.
 *
 * Invariant: `register` is idempotent per registry (a second API in the same process, as in
 * tests, replaces the sources instead of adding a second family).
 */
import { Gauge } from "prom-client";
import { metricsRegistry } from "../obs/metrics.js";
import { type OverviewSources, queueCounts } from "./queue-overview.js";

const JOBS = "farm_queue_jobs";
const OLDEST = "farm_queue_oldest_waiting_age_seconds";
const RUNNABLE = "farm_queue_oldest_runnable_age_seconds";

export function registerQueueMetrics(src: Pick<OverviewSources, "redis" | "keys" | "queue">) {
  for (const name of [JOBS, OLDEST, RUNNABLE]) metricsRegistry.removeSingleMetric(name);
  // One read serves the three families of a scrape.
  let pending: ReturnType<typeof queueCounts> | null = null;
  const read = () => {
    pending ??= queueCounts(src, Date.now()).finally(() => {
      pending = null;
    });
    return pending;
  };
  new Gauge({
    name: JOBS,
    help: "Turns by place: waiting (fair FIFOs), dispatched (queued for a worker), active, parked (waiting for a model's budget), failed_jobs",
    labelNames: ["state"] as const,
    registers: [metricsRegistry],
    async collect() {
      const { counts } = await read();
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  new Gauge({
    name: OLDEST,
    help: "Age of the oldest turn not yet dispatched to a worker (0 when none waits)",
    registers: [metricsRegistry],
    async collect() {
      this.set(((await read()).oldestWaitingAgeMs ?? 0) / 1000);
    },
  });
  new Gauge({
    name: RUNNABLE,
    help: "Age of the oldest turn that could be dispatched now (its session's head, its user under limits)",
    registers: [metricsRegistry],
    async collect() {
      this.set(((await read()).oldestRunnableAgeMs ?? 0) / 1000);
    },
  });
}
