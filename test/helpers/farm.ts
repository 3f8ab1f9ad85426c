/**
 * A whole farm for end-to-end tests: the simulator, API, persister and workers, in this process
 * (or workers as child processes where a test must kill them), against the real Redis under a
 * private key prefix and a private data folder. `stop()` removes both.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { type RunningApi, startApi } from "../../api/start.js";
import { loadConfig } from "../../src/config/load.js";
import type { FarmConfig } from "../../src/config/schema.js";
import { createLogger, logSettingsOf } from "../../src/obs/logger.js";
import { type RunningPersister, startPersister } from "../../src/roles/persister-role.js";
import { type RunningWorker, startTurnWorker } from "../../src/roles/worker-role.js";
import { type SimServer, startSimServer } from "../../src/sim/server.js";
import { deleteKeys, REDIS_URL } from "./redis.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** A worker process: its JSON log lines so far, and the port its `/metrics` listens on. */
export type SpawnedWorker = ChildProcess & { logs: string[]; metricsPort: number };

export interface FarmOptions {
  /** Extra environment settings (names as in docs/operations.md). */
  env?: Record<string, string>;
  workers?: number;
  persister?: boolean;
  /**
   * Extra models (name → model settings as in a config file's `models`), built once the
   * simulator's URL is known and written to a config file that every process of the farm reads
   * (`FARM_CONFIG`, spawned workers too). The `sim` model stays registered and the default.
   */
  models?: (simUrl: string) => Record<string, Record<string, unknown>>;
}

export class TestFarm {
  readonly workers: RunningWorker[] = [];
  readonly children: ChildProcess[] = [];
  persister: RunningPersister | null = null;
  private constructor(
    readonly config: FarmConfig,
    readonly env: Record<string, string>,
    readonly sim: SimServer,
    readonly api: RunningApi,
    readonly redis: Redis,
    private readonly dataDir: string,
  ) {}

  static async start(options: FarmOptions = {}): Promise<TestFarm> {
    if (options.models && options.env?.FARM_CONFIG) {
      throw new Error("pass either env.FARM_CONFIG or models, not both");
    }
    const prefix = `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const dataDir = await mkdtemp(path.join(os.tmpdir(), "wunder-farm-test-"));
    const base: Record<string, string> = {
      REDIS_URL,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      PORT: "0",
      API_HOST: "127.0.0.1",
      LOG_LEVEL: "error",
      WORKER_CONCURRENCY: "8",
      METRICS_PORT: "0",
      PERSISTER_METRICS_PORT: "0",
      DELTA_FLUSH_MS: "10",
      SSE_HEARTBEAT_MS: "15000",
      ...options.env,
    };
    const simConfig = loadConfig(base).sim;
    const sim = await startSimServer(simConfig, { port: 0, host: "127.0.0.1" });
    const env: Record<string, string> = {
      ...base,
      SIM_PORT: String(sim.port),
      SIM_HOST: "127.0.0.1",
    };
    if (options.models) {
      const file = path.join(dataDir, "farm-config.json");
      await writeFile(file, JSON.stringify({ models: options.models(sim.url) }));
      env.FARM_CONFIG = file;
    }
    const config = testConfig(env);
    const logger = createLogger("test", logSettingsOf(config));
    const api = await startApi(config, logger);
    const farm = new TestFarm(config, env, sim, api, new Redis(REDIS_URL), dataDir);
    if (options.persister !== false) farm.persister = await startPersister(config, logger);
    for (let i = 0; i < (options.workers ?? 1); i++) await farm.addWorker();
    return farm;
  }

  get url(): string {
    return this.api.url;
  }

  /** A fair-scheduler key of this farm, e.g. `fairKey("run:alice")` (see fair-lua.ts). */
  fairKey(name: string): string {
    return `${this.config.redis.prefix}:fair:${name}`;
  }

  async addWorker(): Promise<RunningWorker> {
    const worker = await startTurnWorker(
      this.config,
      createLogger("test-worker", logSettingsOf(this.config)),
    );
    this.workers.push(worker);
    return worker;
  }

  async startPersister(): Promise<void> {
    this.persister ??= await startPersister(
      this.config,
      createLogger("test", logSettingsOf(this.config)),
    );
  }

  async stopPersister(): Promise<void> {
    await this.persister?.stop();
    this.persister = null;
  }

  /**
   * A turn worker in its own process (so a test can SIGKILL or SIGTERM it). Resolves once it is
   * ready; `logs` collects its JSON log lines.
   */
  async spawnWorker(extraEnv: Record<string, string> = {}): Promise<SpawnedWorker> {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", path.join(ROOT, "workers/turn-worker.ts")],
      {
        env: { ...process.env, ...this.env, LOG_LEVEL: "info", ...extraEnv },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.children.push(child);
    const logs: string[] = [];
    let partial = "";
    const collect = (chunk: Buffer) => {
      const lines = (partial + chunk.toString()).split("\n");
      partial = lines.pop() ?? "";
      logs.push(...lines.filter(Boolean));
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    const started = await new Promise<string>((resolve, reject) => {
      const ready = () => {
        const line = logs.find((l) => l.includes("turn worker started"));
        if (line) resolve(line);
      };
      child.stdout?.on("data", ready);
      child.once("exit", (code) =>
        reject(new Error(`worker exited early (${code}): ${logs.join("\n")}`)),
      );
    });
    const { metrics_port: metricsPort } = JSON.parse(started) as { metrics_port: number };
    return Object.assign(child, { logs, metricsPort });
  }

  async stop(): Promise<void> {
    for (const child of this.children) if (child.exitCode === null) child.kill("SIGKILL");
    await Promise.all(this.workers.map((w) => w.stop(200)));
    await this.persister?.stop();
    await this.api.stop();
    await this.sim.close();
    await deleteKeys(this.redis, `${this.config.redis.prefix}:*`);
    await this.redis.quit();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

/** Config for tests: the simulator model retries fast, so fault tests finish quickly. */
function testConfig(env: Record<string, string>): FarmConfig {
  const config = loadConfig(env);
  const sim = config.models.sim;
  if (!sim) throw new Error("simulator model missing from config");
  return {
    ...config,
    models: {
      ...config.models,
      sim: {
        ...sim,
        maxRetries: 2,
        maxRetryDelayMs: 200,
        idleTimeoutMs: 1_000,
        requestTimeoutMs: 10_000,
      },
    },
  };
}
