/**
 * A turn worker's own gauges and counters: how many turns it runs against its concurrency, and
 * the jobs BullMQ found stalled (a worker died or its event loop froze past the lock). Each
 * worker exports them on its metrics port; dashboards sum over instances.
 */
import { Counter, Gauge } from "prom-client";
import { metricsRegistry } from "../obs/metrics.js";

const ACTIVE = "farm_worker_active_jobs";
const CONCURRENCY = "farm_worker_concurrency";

const stalled = new Counter({
  name: "farm_jobs_stalled_total",
  help: "Turn jobs this worker found stalled (their worker stopped renewing the lock)",
  registers: [metricsRegistry],
});

/** Registers the gauges for this process's worker (again: the latest worker wins, as in tests). */
export function registerWorkerMetrics(activeJobs: () => number, concurrency: number): void {
  for (const name of [ACTIVE, CONCURRENCY]) metricsRegistry.removeSingleMetric(name);
  new Gauge({
    name: ACTIVE,
    help: "Turns this worker is running now",
    registers: [metricsRegistry],
    collect() {
      this.set(activeJobs());
    },
  });
  new Gauge({
    name: CONCURRENCY,
    help: "Turns this worker may run at once",
    registers: [metricsRegistry],
  }).set(concurrency);
}

export const workerMetrics = {
  stalled(): void {
    stalled.inc();
  },
};
