/**
 * `throughput`: many users push N turns through one API and one worker process, as fast as the
 * farm takes them. Measures turns/s, submit→first event and submit→terminal latency, events
 * persisted per second, and the worker's memory over the run (flat = no leak).
 */
import path from "node:path";
import Database from "better-sqlite3";
import { type BenchFarm, rssMiB } from "../farm-processes.js";
import { runTurn, runUsers } from "../load.js";
import { latencyFigures, mean, round } from "../stats.js";

export interface ThroughputOptions {
  turns: number;
  concurrency: number;
  users: number;
}

const SAMPLE_EVERY_MS = 500;

export async function throughput(
  farm: BenchFarm,
  options: ThroughputOptions,
  log: (line: string) => void,
) {
  const workerPid = farm.pid("worker-1");
  const db = new Database(path.join(farm.dataDir, "farm.sqlite"), {
    readonly: true,
    fileMustExist: true,
  });
  const countEvents = () =>
    (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
  const rss: { at: number; mib: number }[] = [];
  const persisted: { at: number; count: number }[] = [];

  const started = performance.now();
  const sampler = setInterval(() => {
    const at = performance.now() - started;
    rss.push({ at, mib: rssMiB(workerPid) });
    persisted.push({ at, count: countEvents() });
  }, SAMPLE_EVERY_MS);
  const timings = await runUsers(
    options.concurrency,
    options.turns,
    (i) =>
      runTurn(farm.apiUrl, {
        input: "please list the files",
        user_id: `user-${i % options.users}`,
      }),
    (done) => {
      if (done % 1000 === 0) log(`throughput: ${done}/${options.turns} turns`);
    },
  );
  const loadSeconds = (performance.now() - started) / 1000;

  // The persister's rate: events stored from the start until it caught up with the last turn.
  let stored = countEvents();
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const now = countEvents();
    if (now === stored) break;
    stored = now;
  }
  const caughtUpSeconds = Math.max(
    loadSeconds,
    ((persisted.findLast((p) => p.count < stored)?.at ?? 0) + SAMPLE_EVERY_MS) / 1000,
  );
  clearInterval(sampler);
  db.close();

  const window = Math.max(1, Math.floor(rss.length * 0.2));
  const firstRss = mean(rss.slice(0, window).map((s) => s.mib));
  const lastRss = mean(rss.slice(-window).map((s) => s.mib));
  return {
    turns: timings.length,
    failed_turns: timings.filter((t) => t.status !== "completed").length,
    turns_per_s: round(timings.length / loadSeconds),
    ...latencyFigures(
      "first_event",
      timings.map((t) => t.firstEventMs),
    ),
    ...latencyFigures(
      "terminal",
      timings.map((t) => t.terminalMs),
    ),
    events_persisted: stored,
    events_persisted_per_s: round(stored / caughtUpSeconds),
    worker_rss_first_20pct_mib: round(firstRss),
    worker_rss_last_20pct_mib: round(lastRss),
    worker_rss_growth_pct: round(((lastRss - firstRss) / firstRss) * 100),
  };
}
