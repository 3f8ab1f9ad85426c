/**
 * `npm run bench -- <scenario> [--key value …]`
 *
 * Scenarios: throughput, concurrency48, cancel, cpu, fairness-burst, fairness-equal,
 * scheduler-overhead, model-429, store-write, store-replay, session-load, parallel-tools,
 * tool-faults, breaker, token-accuracy, long-sessions, observability-overhead, all (the default:
 * every one). Progress goes to stderr; the last
 * line of stdout is one JSON object: {"scenario", "figures", "baseline", "config"}. Every run
 * measures its own baseline (plain BullMQ no-op jobs on the same Redis) so figures from a noisy
 * machine can be read as ratios. The scheduling scenarios (fairness-*, model-429) run their own
 * farm settings (simulated model latency, 16 worker slots), listed in their `settings`.
 *
 * Options (numbers): --turns, --concurrency, --users, --warmup, --repeats, --cancel-turns,
 * --worker-concurrency, --baseline-jobs, --two-requests 1 (POST then GET /events instead of one
 * streaming POST); fairness-burst: --heavy-turns, --light-users, --burst-repeats;
 * fairness-equal: --equal-users, --window-s; scheduler-overhead: --overhead-jobs,
 * --overhead-users, --overhead-repeats; model-429: --fault-s, --retry-after-s, --a-turns-per-s;
 * store-write: --write-events, --per-event-events, --store-repeats; store-replay: --replay-events,
 * --replay-buckets; session-load: --load-turns; parallel-tools: --tool-repeats; tool-faults:
 * --fault-rounds; token-accuracy: --accuracy-prompts; long-sessions: --long-sessions, --long-turns;
 * observability-overhead: --turns, --warmup, --repeats (farms per arm).
 * The tool scenarios run the orchestrator in this process (real Redis, real
 * MCP servers), without a farm. The store scenarios measure their own baseline
 * (per-event writes, one bucket, the full history) and run on SQLite, and on MongoDB as well when
 * MONGO_URL is set.
 */
import os from "node:os";
import { bullmqNoopThroughput } from "./bullmq-baseline.js";
import { BenchFarm, type BenchFarmOptions, REDIS_URL } from "./farm-processes.js";
import type { TurnFlow } from "./load.js";
import { breaker } from "./scenarios/breaker.js";
import { cancelLatency } from "./scenarios/cancel.js";
import { concurrency48 } from "./scenarios/concurrency48.js";
import { cpuBudget } from "./scenarios/cpu-budget.js";
import { fairnessBurst, fairnessBurstFarmEnv } from "./scenarios/fairness-burst.js";
import {
  fairnessEqual,
  fairnessEqualFarmConfig,
  fairnessEqualFarmEnv,
} from "./scenarios/fairness-equal.js";
import {
  LONG_SESSIONS_WINDOW_TOKENS,
  longSessions,
  longSessionsFarmEnv,
} from "./scenarios/long-sessions.js";
import { model429, model429FarmConfig, model429FarmEnv } from "./scenarios/model-429.js";
import { observabilityOverhead } from "./scenarios/observability-overhead.js";
import { parallelTools } from "./scenarios/parallel-tools.js";
import { schedulerOverhead } from "./scenarios/scheduler-overhead.js";
import { sessionLoad } from "./scenarios/session-load.js";
import { storeReplay } from "./scenarios/store-replay.js";
import { storeWrite } from "./scenarios/store-write.js";
import { throughput } from "./scenarios/throughput.js";
import { tokenAccuracy } from "./scenarios/token-accuracy.js";
import { toolFaults } from "./scenarios/tool-faults.js";
import { round } from "./stats.js";
import { everythingServer } from "./tool-fixtures.js";

const SCENARIOS = [
  "throughput",
  "concurrency48",
  "cancel",
  "cpu",
  "fairness-burst",
  "fairness-equal",
  "scheduler-overhead",
  "model-429",
  "store-write",
  "store-replay",
  "session-load",
  "parallel-tools",
  "tool-faults",
  "breaker",
  "token-accuracy",
  "long-sessions",
  "observability-overhead",
  "all",
] as const;
type Scenario = (typeof SCENARIOS)[number];

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);

function parseArgs(argv: string[]): { scenario: Scenario; options: Record<string, number> } {
  const named = argv[0] !== undefined && !argv[0].startsWith("--");
  const scenario = (named ? argv[0] : "all") as Scenario;
  if (!SCENARIOS.includes(scenario)) {
    throw new Error(`unknown scenario "${scenario}"; choose one of ${SCENARIOS.join(", ")}`);
  }
  const args = named ? argv.slice(1) : argv;
  const options: Record<string, number> = {};
  for (let i = 0; i < args.length; i += 2) {
    const key = args[i]?.replace(/^--/, "");
    const value = Number(args[i + 1]);
    if (!key || !Number.isFinite(value)) {
      throw new Error(`expected --key <number>, got ${args[i]} ${args[i + 1]}`);
    }
    options[key] = value;
  }
  return { scenario, options };
}

async function withFarm<T>(
  env: Record<string, string>,
  run: (farm: BenchFarm) => Promise<T>,
  options: BenchFarmOptions = {},
): Promise<T> {
  const farm = await BenchFarm.start(env, 1, options);
  try {
    return await run(farm);
  } finally {
    await farm.stop();
  }
}

async function main(): Promise<void> {
  const { scenario, options } = parseArgs(process.argv.slice(2));
  const runs = (name: Scenario) => scenario === name || scenario === "all";
  const workerConcurrency = options["worker-concurrency"] ?? 64;
  const flow: TurnFlow = options["two-requests"] ? "submit_then_stream" : "stream_submit";
  const farmEnv = {
    WORKER_CONCURRENCY: String(workerConcurrency),
    SIM_TTFT_MS: "0",
    SIM_TOKEN_DELAY_MS: "0",
  };
  const figures: Record<string, unknown> = {};

  const baselineJobs = options["baseline-jobs"] ?? 20_000;
  log(`baseline: ${baselineJobs} BullMQ no-op jobs, concurrency ${workerConcurrency}`);
  const baseline = await bullmqNoopThroughput(REDIS_URL, baselineJobs, workerConcurrency);
  log(`baseline: ${baseline.jobs_per_s} jobs/s`);
  const ratio = (turnsPerS: number) => round(turnsPerS / baseline.jobs_per_s, 3);

  if (runs("throughput")) {
    const turns = options.turns ?? 10_000;
    log(`throughput: ${turns} turns`);
    const result = await withFarm(farmEnv, (farm) =>
      throughput(
        farm,
        {
          turns,
          warmupTurns: options.warmup ?? 2_000,
          concurrency: options.concurrency ?? 96,
          users: options.users ?? 500,
          flow,
        },
        log,
      ),
    );
    figures.throughput = { ...result, ratio_to_bullmq_noop: ratio(result.turns_per_s) };
  }
  if (runs("concurrency48")) {
    log("concurrency48: waves of 240 turns, 48 concurrent streams");
    const result = await withFarm(farmEnv, (farm) =>
      concurrency48(farm, {
        concurrency: options.concurrency ?? 48,
        turns: scenario === "all" ? 240 : (options.turns ?? 240),
        repeats: options.repeats ?? 5,
      }),
    );
    figures.concurrency48 = { ...result, ratio_to_bullmq_noop: ratio(result.turns_per_s) };
  }
  if (runs("cancel")) {
    log("cancel: running turns cancelled after their first delta");
    figures.cancel = await withFarm(farmEnv, (farm) =>
      cancelLatency(farm, { turns: options["cancel-turns"] ?? 100, concurrency: 10 }),
    );
  }
  if (runs("cpu")) {
    log("cpu: CPU per turn, per process");
    figures.cpu = await withFarm(farmEnv, (farm) =>
      cpuBudget(farm, {
        turns: scenario === "all" ? 3_000 : (options.turns ?? 3_000),
        concurrency: 48,
        flow,
      }),
    );
  }

  if (runs("fairness-burst")) {
    const heavyTurns = options["heavy-turns"] ?? 1_000;
    log(`fairness-burst: ${heavyTurns} turns of one user, then light users`);
    figures["fairness-burst"] = await withFarm(fairnessBurstFarmEnv(heavyTurns), (farm) =>
      fairnessBurst(
        farm,
        {
          heavyTurns,
          lightUsers: options["light-users"] ?? 20,
          repeats: options["burst-repeats"] ?? 5,
          submitConcurrency: 32,
        },
        log,
      ),
    );
  }
  if (runs("fairness-equal")) {
    log("fairness-equal: equal users, then weights 1:2:4");
    figures["fairness-equal"] = await withFarm(
      fairnessEqualFarmEnv(),
      (farm) =>
        fairnessEqual(
          farm,
          {
            users: options["equal-users"] ?? 50,
            outstandingPerUser: 8,
            weightedOutstandingPerUser: 32,
            warmupS: 5,
            windowS: options["window-s"] ?? 30,
          },
          log,
        ),
      { config: fairnessEqualFarmConfig },
    );
  }
  if (runs("scheduler-overhead")) {
    log("scheduler-overhead: no-op turns through the fair scheduler vs plain BullMQ");
    figures["scheduler-overhead"] = await schedulerOverhead(
      REDIS_URL,
      {
        jobs: options["overhead-jobs"] ?? 20_000,
        users: options["overhead-users"] ?? 200,
        concurrency: workerConcurrency,
        repeats: options["overhead-repeats"] ?? 3,
        baselineJobsPerS: baseline.jobs_per_s,
      },
      log,
    );
  }
  if (runs("model-429")) {
    log("model-429: model a answers 429 while model b's load runs");
    figures["model-429"] = await withFarm(
      model429FarmEnv(),
      (farm) =>
        model429(
          farm,
          {
            faultS: options["fault-s"] ?? 30,
            retryAfterS: options["retry-after-s"] ?? 5,
            aTurnsPerS: options["a-turns-per-s"] ?? 5,
            baselineS: 20,
            recoveryS: 10,
            warmupS: 5,
          },
          log,
        ),
      { config: model429FarmConfig },
    );
  }

  const storeRepeats = options["store-repeats"] ?? 3;
  if (runs("store-write")) {
    log("store-write: batching persister vs one insert per event");
    figures["store-write"] = await storeWrite(
      {
        events: options["write-events"] ?? 100_000,
        perEventEvents: options["per-event-events"] ?? 10_000,
        sessions: 100,
        repeats: storeRepeats,
        batchSize: 500,
      },
      log,
    );
  }
  if (runs("store-replay")) {
    log("store-replay: one session over many buckets, from its mid-point");
    figures["store-replay"] = await storeReplay(
      {
        events: options["replay-events"] ?? 100_000,
        buckets: options["replay-buckets"] ?? 30,
        repeats: storeRepeats + 2,
      },
      log,
    );
  }
  if (runs("session-load")) {
    log("session-load: context from a snapshot vs from the whole history");
    figures["session-load"] = await sessionLoad(
      { turns: options["load-turns"] ?? 2_000, repeats: 20 },
      log,
    );
  }

  if (runs("parallel-tools")) {
    log("parallel-tools: a round of 8 read-only calls of 100 ms, parallelism 4 vs 1");
    figures["parallel-tools"] = await parallelTools(
      { calls: 8, delayMs: 100, repeats: options["tool-repeats"] ?? 10 },
      async () => {
        const server = await everythingServer();
        return {
          entry: server.tool("trigger-long-running-operation"),
          args: JSON.stringify({ duration: 0.1, steps: 1 }),
          close: server.close,
        };
      },
      log,
    );
  }
  if (runs("tool-faults")) {
    log("tool-faults: a tool failing transiently 20% of the time, with and without retries");
    figures["tool-faults"] = await toolFaults(
      { rounds: options["fault-rounds"] ?? 500, callsPerRound: 8, failRate: 0.2 },
      log,
    );
  }
  if (runs("breaker")) {
    log("breaker: a hanging MCP server opens its breaker; other tools keep their pace");
    figures.breaker = await breaker(
      { callTimeoutMs: 200, refusedCalls: 200, otherRounds: 20 },
      log,
    );
  }

  if (runs("token-accuracy")) {
    log(
      "token-accuracy: our estimate vs the simulator's prompt tokens, before and after calibration",
    );
    figures["token-accuracy"] = await tokenAccuracy(
      { prompts: options["accuracy-prompts"] ?? 200 },
      log,
    );
  }
  if (runs("long-sessions")) {
    const sessions = options["long-sessions"] ?? 50;
    log(`long-sessions: ${sessions} sessions, window ${LONG_SESSIONS_WINDOW_TOKENS} tokens`);
    figures["long-sessions"] = await withFarm(longSessionsFarmEnv(), (farm) =>
      longSessions(
        farm,
        {
          sessions,
          turnsPerSession: options["long-turns"] ?? 50,
          concurrency: Math.min(sessions, 25),
          seed: 11,
        },
        log,
      ),
    );
  }
  if (runs("observability-overhead")) {
    const turns = scenario === "all" ? 3_000 : (options.turns ?? 5_000);
    log(`observability-overhead: throughput of ${turns} turns, observability on vs off`);
    figures["observability-overhead"] = await observabilityOverhead(
      (env, drainLogs, run) => withFarm({ ...farmEnv, ...env }, run, { drainLogs }),
      {
        turns,
        warmupTurns: options.warmup ?? 1_000,
        concurrency: options.concurrency ?? 96,
        users: options.users ?? 500,
        repeats: options.repeats ?? 3,
        flow,
      },
      log,
    );
  }

  const output = {
    scenario,
    figures: scenario === "all" ? figures : figures[scenario],
    baseline: { bullmq_noop: baseline },
    config: {
      worker_concurrency: workerConcurrency,
      api_processes: 1,
      worker_processes: 1,
      // The scheduling scenarios list their own farm settings in their figures.
      simulator_latency_ms: 0,
      flow,
      cpus: os.cpus().length,
      node: process.version,
      options,
    },
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log(`failed: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
