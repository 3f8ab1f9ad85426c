/**
 * `throughput`: many users push N turns through one API and one worker process, as fast as the
 * farm takes them. Measures turns/s, submit→first event and submit→terminal latency, events
 * persisted per second, and the worker's memory over the run (flat = no leak).
 *
 * A warm-up run comes first: V8 grows its heap to the working size in the first seconds under
 * load (about +50 MiB, then flat), and that growth is start-up, not a leak.
 */
import { type BenchFarm, rssMiB } from "../farm-processes.js";
import { runTurn, runUsers, type TurnFlow } from "../load.js";
import { latencyFigures, mean, round } from "../stats.js";
import { openStoredEvents } from "../stored-events.js";

export interface ThroughputOptions {
  turns: number;
  warmupTurns: number;
  concurrency: number;
  users: number;
  flow: TurnFlow;
}

const SAMPLE_EVERY_MS = 500;

export async function throughput(
  farm: BenchFarm,
  options: ThroughputOptions,
  log: (line: string) => void,
) {
  const turn = (i: number) =>
    runTurn(
      farm.apiUrl,
      { input: "please list the files", user_id: `user-${i % options.users}` },
      options.flow,
    );
  log(`throughput: warm-up, ${options.warmupTurns} turns`);
  await runUsers(options.concurrency, options.warmupTurns, turn);

  const workerPid = farm.pid("worker-1");
  const db = openStoredEvents(farm.dataDir);
  const countEvents = () => db.count();
  const eventsBefore = countEvents();
  const rss: number[] = [];
  const persisted: { at: number; count: number }[] = [];
  const started = performance.now();
  const sampler = setInterval(() => {
    rss.push(rssMiB(workerPid));
    persisted.push({ at: performance.now() - started, count: countEvents() - eventsBefore });
  }, SAMPLE_EVERY_MS);
  const timings = await runUsers(options.concurrency, options.turns, turn, (done) => {
    if (done % 2000 === 0) log(`throughput: ${done}/${options.turns} turns`);
  });
  const loadSeconds = (performance.now() - started) / 1000;

  // The persister's rate: events stored from the start until it caught up with the last turn.
  let stored = countEvents() - eventsBefore;
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const now = countEvents() - eventsBefore;
    if (now === stored) break;
    stored = now;
  }
  clearInterval(sampler);
  db.close();
  const lastBelow = persisted.findLast((p) => p.count < stored)?.at ?? 0;
  const caughtUpSeconds = Math.max(loadSeconds, (lastBelow + SAMPLE_EVERY_MS) / 1000);

  const window = Math.max(1, Math.floor(rss.length * 0.2));
  const firstRss = mean(rss.slice(0, window));
  const lastRss = mean(rss.slice(-window));
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
