/**
 * The farm as the benchmark runs it: each role in its own process from the compiled build
 * (`npm run build` first), on free loopback ports, with a private Redis prefix and data folder,
 * so a benchmark measures the product as operators run it and leaves nothing behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { freePort } from "../test/helpers/ports.js";
import { deleteKeys } from "../test/helpers/redis.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

export interface FarmProcess {
  role: string;
  child: ChildProcess;
}

export interface BenchFarmOptions {
  /**
   * A config file for every process (`FARM_CONFIG`), built once the ports are known, e.g. models
   * served by the farm's simulator or scheduler tiers. Environment settings still win over it.
   */
  config?(ports: { apiPort: number; simPort: number }): Record<string, unknown>;
  /**
   * Read every process's stdout (its JSON log lines) through a pipe, as a log shipper would, and
   * count the bytes (`logBytes`); otherwise stdout goes to /dev/null.
   */
  drainLogs?: boolean;
}

export class BenchFarm {
  private constructor(
    readonly apiUrl: string,
    readonly env: Record<string, string>,
    readonly processes: FarmProcess[],
    readonly dataDir: string,
    readonly prefix: string,
    /** The simulator's root, e.g. `http://127.0.0.1:1234` (its fault switch is `/sim/faults`). */
    readonly simUrl: string,
    /** Bytes the processes wrote to stdout so far (with `drainLogs`; else 0). */
    readonly logBytes: () => number,
  ) {}

  static async start(
    env: Record<string, string>,
    workers = 1,
    options: BenchFarmOptions = {},
  ): Promise<BenchFarm> {
    const prefix = `bench-${process.pid}-${Date.now().toString(36)}`;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "wunder-farm-bench-"));
    const [apiPort, simPort] = [await freePort(), await freePort()];
    const fullEnv: Record<string, string> = {
      REDIS_URL,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      PORT: String(apiPort),
      API_HOST: "127.0.0.1",
      SIM_PORT: String(simPort),
      LOG_LEVEL: "warn",
      METRICS_PORT: "0",
      PERSISTER_METRICS_PORT: "0",
      ...env,
    };
    if (options.config) {
      const file = path.join(dataDir, "farm-config.json");
      await writeFile(file, JSON.stringify(options.config({ apiPort, simPort }), null, 2));
      fullEnv.FARM_CONFIG = file;
    }
    const roles = [
      ["llm-sim", "workers/llm-sim.js"],
      ["persister", "workers/event-persister.js"],
      ...Array.from({ length: workers }, (_, i) => [`worker-${i + 1}`, "workers/turn-worker.js"]),
      ["api", "api/server.js"],
    ] as const;
    // BENCH_CPU_PROFILE_DIR=<dir> writes a V8 CPU profile per farm process, for finding hot spots.
    const profileDir = process.env.BENCH_CPU_PROFILE_DIR;
    const nodeArgs = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
    const processes = roles.map(([role, file]) => ({
      role,
      child: spawn(process.execPath, [...nodeArgs, path.join(ROOT, "dist", file)], {
        env: { ...process.env, ...fullEnv },
        stdio: ["ignore", options.drainLogs ? "pipe" : "ignore", "inherit"],
      }),
    }));
    let logBytes = 0;
    for (const { child } of processes) {
      child.stdout?.on("data", (chunk: Buffer) => {
        logBytes += chunk.length;
      });
    }
    const farm = new BenchFarm(
      `http://127.0.0.1:${apiPort}`,
      fullEnv,
      processes,
      dataDir,
      prefix,
      `http://127.0.0.1:${simPort}`,
      () => logBytes,
    );
    try {
      await farm.waitReady();
    } catch (err) {
      // Do not leave the other processes, keys and files of a farm that failed to start behind.
      await farm.stop();
      throw err;
    }
    return farm;
  }

  pid(role: string): number {
    const found = this.processes.find((p) => p.role === role);
    if (!found?.child.pid) throw new Error(`no process ${role}`);
    return found.child.pid;
  }

  async stop(): Promise<void> {
    for (const { child } of this.processes) child.kill("SIGTERM");
    await Promise.all(
      this.processes.map(
        ({ child }) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null) return resolve();
            const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
            child.once("exit", () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    const redis = new Redis(REDIS_URL);
    await deleteKeys(redis, `${this.prefix}:*`);
    await redis.quit();
    await rm(this.dataDir, { recursive: true, force: true });
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      for (const { role, child } of this.processes) {
        if (child.exitCode !== null) throw new Error(`${role} exited with ${child.exitCode}`);
      }
      try {
        const res = await fetch(`${this.apiUrl}/readyz`);
        if (res.ok) {
          // The worker connects on its own schedule; give it a moment after the API is ready.
          await new Promise((r) => setTimeout(r, 1_000));
          return;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("farm did not become ready within 30 s");
  }
}

/** Resident set size of a process, in MiB (Linux). */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}
