/** CPU seconds used so far by a process (Linux /proc), and by the Redis server (INFO cpu). */
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

const CLOCK_TICKS_PER_S = 100;

export function processCpuS(pid: number): number {
  const fields = (readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1] ?? "").split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

export async function redisCpuS(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0);
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  return sys + user;
}
