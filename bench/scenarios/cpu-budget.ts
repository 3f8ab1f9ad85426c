/**
 * `cpu`: where the CPU of a turn goes. Runs the concurrency48 load for a while and divides each
 * process's CPU time (the farm's processes, Redis, and the load driver itself) by the turns
 * done: milliseconds of CPU per turn, per process. On a 2-core machine the sum bounds the
 * reachable turns/s at about 2000 / sum.
 */
import { Redis } from "ioredis";
import { type BenchFarm, REDIS_URL } from "../farm-processes.js";
import { runTurn, runUsers, type TurnFlow } from "../load.js";
import { processCpuS, redisCpuS } from "../process-cpu.js";
import { round } from "../stats.js";

export async function cpuBudget(
  farm: BenchFarm,
  options: { turns: number; concurrency: number; flow: TurnFlow },
) {
  const turn = (i: number) =>
    runTurn(
      farm.apiUrl,
      { input: "please list the files", user_id: `cpu-${i % options.concurrency}` },
      options.flow,
    );
  await runUsers(options.concurrency, options.concurrency * 10, turn);
  const redis = new Redis(REDIS_URL);
  const before = farm.processes.map((p) => processCpuS(p.child.pid ?? 0));
  const redisBefore = await redisCpuS(redis);
  const selfBefore = process.cpuUsage();
  const started = performance.now();
  await runUsers(options.concurrency, options.turns, turn);
  const seconds = (performance.now() - started) / 1000;
  const perTurnMs = (cpuS: number) => round((cpuS / options.turns) * 1000, 2);
  const figures: Record<string, number> = {};
  farm.processes.forEach((p, i) => {
    figures[`${p.role}_cpu_ms_per_turn`] = perTurnMs(
      processCpuS(p.child.pid ?? 0) - (before[i] ?? 0),
    );
  });
  figures.redis_cpu_ms_per_turn = perTurnMs((await redisCpuS(redis)) - redisBefore);
  const self = process.cpuUsage(selfBefore);
  figures.load_driver_cpu_ms_per_turn = perTurnMs((self.user + self.system) / 1e6);
  figures.total_cpu_ms_per_turn = round(
    Object.values(figures).reduce((a, b) => a + b, 0),
    2,
  );
  figures.turns_per_s = round(options.turns / seconds);
  await redis.quit();
  return figures;
}
