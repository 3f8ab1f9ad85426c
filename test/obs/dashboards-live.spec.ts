/**
 * Proof that the dashboards work: a real Prometheus scrapes a running farm (the API process,
 * which here also hosts the persister, two spawned worker processes and a spawned archiver) while
 * a short, bounded load runs — turns with tool calls, a model call that fails once and is
 * retried, a refused submit, a manual compaction, a resumed event stream. Then every query of
 * every panel of dashboards/grafana/*.json, as Grafana would send it, must return data without
 * an error, and every recording and alerting rule must evaluate cleanly.
 *
 * Also `npm run check:dashboards`. Skipped, and said so, where Prometheus is not installed.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { allTurnEvents, http, sleep, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";
import { freePort } from "../helpers/ports.js";
import { HAS_PROMETHEUS, PrometheusServer } from "../helpers/prometheus.js";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ARCHIVER_READY_MS = 20_000;

/** The archiver role in its own process, serving `/metrics` on `port` once it is up. */
async function spawnArchiver(env: Record<string, string>, port: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", path.join(ROOT, "workers/archiver.ts")],
    {
      env: { ...process.env, ...env, ARCHIVER_METRICS_PORT: String(port) },
      stdio: "ignore",
    },
  );
  const deadline = Date.now() + ARCHIVER_READY_MS;
  while (!(await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.ok) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the archiver did not serve /healthz on ${port}`);
    }
    await sleep(200);
  }
  return child;
}

const DASHBOARDS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dashboards");

/**
 * Grafana's variables as a dashboard sees them with "All" selected and a 10-minute range. The
 * rate window spans the whole check, so a slow machine (the load taking a minute) still counts.
 */
const VARIABLES: [RegExp, string][] = [
  [/\$job\b/g, ".*"],
  [/\$instance\b/g, ".*"],
  [/\$__rate_interval\b/g, "5m"],
  [/\$__range\b/g, "10m"],
];

/** Longer than Prometheus's 1 s scrape interval here. */
const SCRAPE_GAP_MS = 1_200;

/** Scrapes that must land after the load before the panels are read (1 s interval). */
const SETTLE_MS = 4_000;

interface PanelQuery {
  dashboard: string;
  panel: string;
  expr: string;
}

async function panelQueries(): Promise<PanelQuery[]> {
  const dir = path.join(DASHBOARDS, "grafana");
  const queries: PanelQuery[] = [];
  for (const file of (await readdir(dir)).filter((f) => f.endsWith(".json"))) {
    const dashboard = JSON.parse(await readFile(path.join(dir, file), "utf8")) as {
      title: string;
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    for (const panel of dashboard.panels) {
      for (const target of panel.targets ?? []) {
        queries.push({ dashboard: dashboard.title, panel: panel.title, expr: target.expr });
      }
    }
  }
  return queries;
}

/** A numeric sample's value is data; NaN (e.g. a quantile of no observations) is not. */
function hasData(data: { resultType: string; result: unknown }): boolean {
  if (data.resultType === "scalar") return !Number.isNaN(Number((data.result as unknown[])[1]));
  const series = data.result as { value?: [number, string]; values?: [number, string][] }[];
  return series.some((s) =>
    (s.values ?? (s.value ? [s.value] : [])).some(([, v]) => !Number.isNaN(Number(v))),
  );
}

/**
 * One round of bounded traffic (about five seconds, on 127.0.0.1) that moves every family the
 * dashboards read: turns with a tool call, a model call that fails once and is retried, a
 * refused submit, a manual compaction, a resumed event stream.
 */
async function runLoad(farm: TestFarm, tag: string): Promise<void> {
  const user = (name: string) => `${tag}-${name}`;
  const tools = await submit(farm.url, { input: "please list the files", user_id: user("a") });
  const retried = await submit(farm.url, {
    input: "[[sim fault=500 fault_times=1]] hi",
    user_id: user("b"),
  });
  const slow = await submit(farm.url, {
    input: "[[sim token_delay_ms=20 reply_tokens=150]] take your time",
    user_id: user("c"),
  });
  const refused = await http(farm.url, "POST", "/v1/turns", {
    input: "me too",
    user_id: user("c"),
    session_id: slow.session_id,
    on_busy: "reject",
  });
  expect(refused.status).to.equal(409);
  for (const turn of [tools, retried, slow]) {
    const ended = await waitForTurn(farm.url, turn.turn_id);
    expect(ended.status, JSON.stringify(ended)).to.equal("completed");
  }
  const followUp = await submit(farm.url, {
    input: "and read the first one",
    user_id: user("a"),
    session_id: tools.session_id,
  });
  await waitForTurn(farm.url, followUp.turn_id);
  const compaction = await http<{ turn_id: string }>(
    farm.url,
    "POST",
    `/v1/sessions/${tools.session_id}/compaction`,
    { user_id: user("a") },
  );
  expect(compaction.status, JSON.stringify(compaction.body)).to.equal(202);
  await waitForTurn(farm.url, compaction.body.turn_id);
  const events = await allTurnEvents(farm.url, tools.turn_id);
  const resumed = await fetch(`${farm.url}/v1/turns/${tools.turn_id}/events`, {
    headers: { "Last-Event-ID": String(events.at(-2)?.seq) },
  });
  await resumed.text();
  // Three more tool turns a scrape apart: with two workers, one of them runs two, so its tool
  // histogram grows between scrapes (a series seen once has no rate).
  for (let i = 0; i < 3; i++) {
    const turn = await submit(farm.url, { input: "please list the files", user_id: user(`t${i}`) });
    await waitForTurn(farm.url, turn.turn_id);
    await sleep(SCRAPE_GAP_MS);
  }
}

describe("dashboards against a real Prometheus (end to end)", function () {
  this.timeout(120_000);
  let farm: TestFarm;
  let archiver: ChildProcess | undefined;
  let prometheus: PrometheusServer;

  before(async function () {
    if (!HAS_PROMETHEUS) {
      console.log("    live dashboard check SKIPPED: prometheus is not installed");
      this.skip();
    }
    farm = await TestFarm.start({ workers: 0 });
    const archiverPort = await freePort();
    archiver = await spawnArchiver(farm.env, archiverPort);
    const workers = [
      await farm.spawnWorker({ METRICS_PORT: "0" }),
      await farm.spawnWorker({ METRICS_PORT: "0" }),
    ];
    // Before the first scrape, as on a farm that has been running: histogram and labelled
    // series exist, so the load below shows up as rates rather than as new series.
    await runLoad(farm, "warm");
    prometheus = await PrometheusServer.start(
      [
        // The API's registry also holds the in-process persister's families.
        { job: "farm-api", targets: [new URL(farm.url).host] },
        { job: "farm-worker", targets: workers.map((w) => `127.0.0.1:${w.metricsPort}`) },
        { job: "farm-archiver", targets: [`127.0.0.1:${archiverPort}`] },
      ],
      [path.join(DASHBOARDS, "alerts.yml")],
    );
  });
  after(async () => {
    await prometheus?.stop();
    archiver?.kill("SIGTERM");
    await farm?.stop();
  });

  it("answers every panel's query with data, and evaluates every rule", async () => {
    await prometheus.waitForScrapes(4);
    await runLoad(farm, "load");
    await sleep(SETTLE_MS);

    const failures: string[] = [];
    const queries = await panelQueries();
    expect(queries.length).to.be.above(30);
    for (const q of queries) {
      const where = `${q.dashboard} / ${q.panel}: ${q.expr}`;
      if (/\bor\s+vector\(/.test(q.expr)) failures.push(`${where}: hides missing data`);
      const expr = VARIABLES.reduce((e, [variable, value]) => e.replace(variable, value), q.expr);
      try {
        if (!hasData(await prometheus.query(expr))) failures.push(`${where}: no data`);
      } catch (err) {
        failures.push(`${where}: ${(err as Error).message}`);
      }
    }
    expect(failures, failures.join("\n")).to.deep.equal([]);

    const { groups } = await prometheus.get<{
      groups: { rules: { name: string; health: string; lastError?: string }[] }[];
    }>("/api/v1/rules");
    const rules = groups.flatMap((g) => g.rules);
    expect(rules.length).to.be.above(10);
    const broken = rules.filter((r) => r.health === "err");
    expect(broken.map((r) => `${r.name}: ${r.lastError}`)).to.deep.equal([]);
  });
});
