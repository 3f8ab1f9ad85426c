/**
 * Process start-up with a bad setting: the real entry points (`api/server.ts`,
 * `workers/turn-worker.ts`, run by node + tsx like `npm run dev`) must exit with code 1 and a
 * stderr line naming the offending variable, not a stack trace and not a running process.
 * The children get the test's environment minus every farm variable, plus a private Redis
 * prefix and data folder, so a child that wrongly starts touches nothing shared.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { Redis } from "ioredis";
import { ENV_SETTINGS } from "../../src/config/env.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

describe("process start-up with an invalid setting", function () {
  // tsx compiles the entry's whole import graph on start: allow for a slow machine.
  this.timeout(60_000);

  const prefix = `test-startup-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  let dataDir = "";
  const running = new Set<ReturnType<typeof spawn>>();

  before(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), "farm-startup-"));
  });

  after(async () => {
    for (const child of running) if (child.exitCode === null) child.kill("SIGKILL");
    const redis = new Redis(REDIS_URL);
    await deleteKeys(redis, `${prefix}:*`);
    await redis.quit();
    await rm(dataDir, { recursive: true, force: true });
  });

  function baseEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    const farmVars = new Set([...ENV_SETTINGS.map((s) => s.env), "FARM_CONFIG"]);
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !farmVars.has(name)) env[name] = value;
    }
    return {
      ...env,
      REDIS_URL,
      REDIS_PREFIX: prefix,
      DATA_DIR: dataDir,
      PORT: "0",
      METRICS_PORT: "0",
      LOG_LEVEL: "error",
    };
  }

  function run(entry: string, overrides: Record<string, string>): Promise<Exit> {
    const child = spawn(process.execPath, ["--import", "tsx", entry], {
      cwd: ROOT,
      env: { ...baseEnv(), ...overrides },
      stdio: ["ignore", "ignore", "pipe"],
    });
    running.add(child);
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    return new Promise((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => {
        running.delete(child);
        resolve({ code, signal, stderr });
      });
    });
  }

  it("api/server.ts with PORT=notaport exits 1 naming PORT", async () => {
    const exit = await run("api/server.ts", { PORT: "notaport" });
    expect(exit.code, exit.stderr).to.equal(1);
    expect(exit.stderr).to.match(/^api: invalid configuration/m);
    expect(exit.stderr).to.match(/PORT: .*\(got "notaport"\)/);
    expect(exit.stderr, "no stack trace").to.not.match(/\n\s+at /);
  });

  it("workers/turn-worker.ts with WORKER_CONCURRENCY=0 exits 1 naming WORKER_CONCURRENCY", async () => {
    const exit = await run("workers/turn-worker.ts", { WORKER_CONCURRENCY: "0" });
    expect(exit.code, exit.stderr).to.equal(1);
    expect(exit.stderr).to.match(/^worker: invalid configuration/m);
    expect(exit.stderr).to.match(/WORKER_CONCURRENCY: .*\(got "0"\)/);
    expect(exit.stderr, "no stack trace").to.not.match(/\n\s+at /);
  });
});
