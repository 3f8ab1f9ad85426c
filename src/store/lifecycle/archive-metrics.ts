/**
 * What the archiver did, for its own `/metrics` (and the API's, where an operator archives a
 * bucket by hand): buckets archived or failed, events moved to archives, and when the last pass
 * ended without a failure, so an alert can tell a stuck archiver from one with nothing to do.
 */
import { Counter, Gauge } from "prom-client";
import { metricsRegistry } from "../../obs/metrics.js";

export const archivedBuckets = new Counter({
  name: "farm_archive_buckets_total",
  help: "Event buckets archived (by any caller), and archiver passes' failed attempts, by outcome",
  labelNames: ["outcome"] as const,
  registers: [metricsRegistry],
});
// Both outcomes exist from the start, so a dashboard shows 0 failures rather than no data.
for (const outcome of ["archived", "failed"]) archivedBuckets.inc({ outcome }, 0);

export const archivedEvents = new Counter({
  name: "farm_archived_events_total",
  help: "Events moved from the store into verified archive files",
  registers: [metricsRegistry],
});

export const archivePassLastSuccess = new Gauge({
  name: "farm_archive_last_success_timestamp_seconds",
  help: "Unix time the archiver's last pass ended with every due bucket archived (0 before the first)",
  registers: [metricsRegistry],
});
