import { readFileSync } from "node:fs";
import { Redis } from "ioredis";
import { BenchFarm, REDIS_URL } from "./farm-processes.js";
import { runTurn, runUsers } from "./load.js";

const cpu = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const farm = await BenchFarm.start({ WORKER_CONCURRENCY: "64" });
const redis = new Redis(REDIS_URL);
const rcpu = async () => {
  const info = await redis.info("cpu");
  const m = /used_cpu_sys:([\d.]+)[\s\S]*used_cpu_user:([\d.]+)/.exec(info)!;
  return Number(m[1]) + Number(m[2]);
};
await runUsers(48, 48, (i) =>
  runTurn(farm.apiUrl, { input: "please list the files", user_id: `w${i}` }),
);
const before = Object.fromEntries(farm.processes.map((p) => [p.role, cpu(p.child.pid!)]));
const r0 = await rcpu();
const self0 = process.cpuUsage();
const t0 = performance.now();
const n = Number(process.argv[2] ?? 480);
await runUsers(48, n, (i) =>
  runTurn(farm.apiUrl, { input: "please list the files", user_id: `u${i % 48}` }),
);
const secs = (performance.now() - t0) / 1000;
const after = Object.fromEntries(farm.processes.map((p) => [p.role, cpu(p.child.pid!)]));
const self = process.cpuUsage(self0);
console.log(`turns/s ${(n / secs).toFixed(1)} wall ${secs.toFixed(2)}s`);
for (const k of Object.keys(after))
  console.log(
    k,
    (((after[k]! - before[k]!) / secs) * 100).toFixed(0) + "% of a core",
    (((after[k]! - before[k]!) / n) * 1000).toFixed(2) + " ms/turn",
  );
const r1 = await rcpu();
console.log(
  "redis",
  (((r1 - r0) / secs) * 100).toFixed(0) + "%",
  (((r1 - r0) / n) * 1000).toFixed(2) + " ms/turn",
);
console.log(
  "driver",
  (((self.user + self.system) / 1e6 / secs) * 100).toFixed(0) + "%",
  ((self.user + self.system) / 1e3 / n).toFixed(2) + " ms/turn",
);
await redis.quit();
await farm.stop();
process.exit(0);
