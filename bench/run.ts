/**
 * `npm run bench -- <scenario> [--key value …]`
 *
 * Scenarios: throughput, concurrency48, cancel, cpu, all (the default: every one). Progress goes
 * to stderr; the last line of stdout is one JSON object: {"scenario", "figures", "baseline",
 * "config"}. Every run measures its own baseline (plain BullMQ no-op jobs on the same Redis) so
 * figures from a noisy machine can be read as ratios.
 *
 * Options (numbers): --turns, --concurrency, --users, --warmup, --repeats, --cancel-turns,
 * --worker-concurrency, --baseline-jobs, --two-requests 1 (POST then GET /events instead of one
 * streaming POST).
 */
import os from "node:os";
import { bullmqNoopThroughput } from "./bullmq-baseline.js";
import { BenchFarm, REDIS_URL } from "./farm-processes.js";
import type { TurnFlow } from "./load.js";
import { cancelLatency } from "./scenarios/cancel.js";
import { concurrency48 } from "./scenarios/concurrency48.js";
import { cpuBudget } from "./scenarios/cpu-budget.js";
import { throughput } from "./scenarios/throughput.js";
import { round } from "./stats.js";

const SCENARIOS = ["throughput", "concurrency48", "cancel", "cpu", "all"] as const;
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
): Promise<T> {
  const farm = await BenchFarm.start(env);
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

  const output = {
    scenario,
    figures: scenario === "all" ? figures : figures[scenario],
    baseline: { bullmq_noop: baseline },
    config: {
      worker_concurrency: workerConcurrency,
      api_processes: 1,
      worker_processes: 1,
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
