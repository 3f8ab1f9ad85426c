/**
 * `npm start`: the whole farm on one machine, in the foreground. Runs the LLM simulator (unless a
 * real model is configured), the API, the event persister, the archiver and `FARM_WORKERS` turn workers as
 * child processes; SIGINT/SIGTERM stops them all. If one dies, the rest are stopped and the farm
 * exits non-zero, so an outer supervisor can restart it.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError, loadConfig, usesSimulator } from "../src/config/load.js";
import { createLogger, logSettingsOf } from "../src/obs/logger.js";

const STOP_DEADLINE_MS = 30_000;

const here = path.dirname(fileURLToPath(import.meta.url));
// Under tsx (npm run dev) the entries are .ts files; after `npm run build` they are .js.
const ext = path.extname(fileURLToPath(import.meta.url));
const runtimeArgs = ext === ".ts" ? ["--import", "tsx"] : [];
const entry = (relative: string) => path.join(here, "..", `${relative}${ext}`);

let config: ReturnType<typeof loadConfig>;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`farm: ${err.message}\n`);
  process.exit(1);
}
const logger = createLogger("farm", logSettingsOf(config));

const roles: { name: string; file: string; env?: Record<string, string> }[] = [
  ...(usesSimulator(config) ? [{ name: "llm-sim", file: entry("workers/llm-sim") }] : []),
  { name: "api", file: entry("api/server") },
  { name: "persister", file: entry("workers/event-persister") },
  { name: "archiver", file: entry("workers/archiver") },
  ...Array.from({ length: config.launcher.workers }, (_, i) => ({
    name: `worker-${i + 1}`,
    file: entry("workers/turn-worker"),
    // Each worker on this machine gets its own metrics port: METRICS_PORT, +1, +2, …
    env: { METRICS_PORT: String(config.worker.metricsPort && config.worker.metricsPort + i) },
  })),
];

const children = new Map<string, ChildProcess>();
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  logger.info("stopping the farm", { processes: children.size });
  for (const child of children.values()) child.kill("SIGTERM");
  const deadline = setTimeout(() => {
    for (const child of children.values()) child.kill("SIGKILL");
  }, STOP_DEADLINE_MS);
  deadline.unref();
  const wait = setInterval(() => {
    if (children.size > 0) return;
    clearInterval(wait);
    process.exit(code);
  }, 50);
}

for (const role of roles) {
  const child = spawn(process.execPath, [...runtimeArgs, role.file], {
    stdio: "inherit",
    env: { ...process.env, ...role.env },
  });
  children.set(role.name, child);
  child.on("exit", (code, signal) => {
    children.delete(role.name);
    if (!stopping) {
      logger.error("a farm process exited; stopping the rest", {
        process: role.name,
        code,
        signal,
      });
      stopAll(1);
    }
  });
}
logger.info("farm started", {
  processes: roles.map((r) => r.name),
  api: `http://127.0.0.1:${config.api.port}`,
  model: config.turn.defaultModel,
});
process.once("SIGINT", () => stopAll(0));
process.once("SIGTERM", () => stopAll(0));
