/**
 * A real Prometheus (Debian's `prometheus` package) for the dashboard checks: scrapes the given
 * targets every second with the farm's recording and alerting rules loaded, on a free loopback
 * port with its data in a temporary directory; `stop` kills it and removes the directory.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { sleep } from "./client.js";
import { freePort } from "./ports.js";

export const HAS_PROMETHEUS = spawnSync("prometheus", ["--version"]).status === 0;

const READY_TIMEOUT_MS = 20_000;

export interface ScrapeJob {
  job: string;
  /** `host:port` of each process's `/metrics`. */
  targets: string[];
}

export interface PromResult {
  resultType: "vector" | "matrix" | "scalar" | "string";
  result: unknown;
}

export class PrometheusServer {
  private constructor(
    readonly url: string,
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly output: string[],
  ) {}

  static async start(jobs: ScrapeJob[], ruleFiles: string[]): Promise<PrometheusServer> {
    const dir = await mkdtemp(path.join(os.tmpdir(), "wunder-farm-prometheus-"));
    const config = {
      global: { scrape_interval: "1s", evaluation_interval: "1s" },
      rule_files: ruleFiles,
      scrape_configs: jobs.map((j) => ({
        job_name: j.job,
        static_configs: [{ targets: j.targets }],
      })),
    };
    await writeFile(path.join(dir, "prometheus.yml"), stringify(config));
    const port = await freePort();
    const child = spawn(
      "prometheus",
      [
        `--config.file=${path.join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${path.join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    const output: string[] = [];
    child.stdout?.on("data", (c: Buffer) => output.push(c.toString()));
    child.stderr?.on("data", (c: Buffer) => output.push(c.toString()));
    const server = new PrometheusServer(`http://127.0.0.1:${port}`, child, dir, output);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null) {
        await server.stop();
        throw new Error(`prometheus exited: ${output.join("")}`);
      }
      const ready = await fetch(`${server.url}/-/ready`).catch(() => null);
      if (ready?.ok) return server;
      if (Date.now() > deadline) {
        await server.stop();
        throw new Error(`prometheus not ready after ${READY_TIMEOUT_MS} ms: ${output.join("")}`);
      }
      await sleep(200);
    }
  }

  /**
   * Resolves once every target has been scraped successfully twice, so what happens next shows
   * up as change. (Prometheus hands new targets to its scrapers about 5 s after start.)
   */
  async waitForScrapes(targets: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const data = await this.query("count_over_time(up[1m]) >= 2 and up == 1").catch(() => null);
      if (Array.isArray(data?.result) && data.result.length >= targets) return;
      if (Date.now() > deadline) throw new Error(`targets not scraped after ${timeoutMs} ms`);
      await sleep(250);
    }
  }

  /** An instant query; throws with Prometheus's error text when the query fails. */
  async query(expr: string): Promise<PromResult> {
    const reply = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await reply.json()) as { status: string; data: PromResult; error?: string };
    if (body.status !== "success") throw new Error(body.error ?? `HTTP ${reply.status}`);
    return body.data;
  }

  async get<T>(apiPath: string): Promise<T> {
    const body = (await (await fetch(`${this.url}${apiPath}`)).json()) as { data: T };
    return body.data;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await Promise.race([exited, sleep(5_000)]);
      if (this.child.exitCode === null) this.child.kill("SIGKILL");
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
