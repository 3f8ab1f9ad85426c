/**
 * The Grafana dashboards in dashboards/grafana/ are exactly what dashboards/panels.ts renders,
 * every panel has a unit, a description and the datasource variable, and every query is valid
 * PromQL (checked by promtool as recording rules, the dashboard variables filled in).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { stringify } from "yaml";
import { DATASOURCE_UID, dashboardFile, renderDashboard } from "../../dashboards/build.js";
import { DASHBOARDS } from "../../dashboards/panels.js";
import { promtool, skipWithoutPromtool } from "../helpers/promtool.js";

const GRAFANA = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../dashboards/grafana",
);

/** A query as Prometheus gets it from Grafana: variables replaced by what "All" sends. */
function withVariables(expr: string): string {
  return expr
    .replaceAll("$__rate_interval", "1m")
    .replaceAll("$__range", "1h")
    .replaceAll("$job", ".*")
    .replaceAll("$instance", ".*");
}

describe("dashboards", () => {
  it("are the JSON dashboards/panels.ts renders (run npm run dashboards:build)", () => {
    const files = readdirSync(GRAFANA)
      .filter((f) => f.endsWith(".json"))
      .sort();
    expect(files).to.deep.equal(DASHBOARDS.map((d) => `${d.uid}.json`).sort());
    for (const spec of DASHBOARDS) {
      const onDisk = readFileSync(path.join(GRAFANA, `${spec.uid}.json`), "utf8");
      expect(onDisk, spec.uid).to.equal(dashboardFile(spec));
    }
  });

  it("give every panel a unit, a description, the datasource variable and a query", () => {
    const covered = new Set<string>();
    for (const spec of DASHBOARDS) {
      const dashboard = renderDashboard(spec);
      expect(dashboard.templating.list.map((v) => v.name)).to.deep.equal([
        "datasource",
        "job",
        "instance",
      ]);
      for (const panel of dashboard.panels) {
        const what = `${spec.uid} / ${panel.title}`;
        expect(panel.description, what).to.not.equal("");
        expect(panel.fieldConfig.defaults.unit, what).to.be.a("string").and.not.equal("");
        expect(panel.datasource.uid, what).to.equal(DATASOURCE_UID);
        expect(panel.targets.length, what).to.be.above(0);
        for (const t of panel.targets) {
          const names = t.expr.match(/\b(farm_|gen_ai_|http_|process_|nodejs_)[a-z_]+/g) ?? [];
          for (const n of names) covered.add(n);
          // Raw selectors filter by the job and instance variables.
          if (!t.expr.startsWith("farm:")) expect(t.expr, what).to.contain('job=~"$job"');
        }
      }
    }
    // The families the issue names each have a panel.
    for (const family of [
      "farm_turn_queue_wait_seconds_bucket",
      "farm_turn_duration_seconds_bucket",
      "farm_turns_finished_total",
      "gen_ai_client_operation_duration_seconds_count",
      "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
      "gen_ai_client_token_usage_sum",
      "farm_llm_breaker_state",
      "gen_ai_execute_tool_duration_seconds_count",
      "farm_compactions_total",
      "farm_queue_jobs",
      "farm_queue_oldest_waiting_age_seconds",
      "farm_worker_active_jobs",
      "farm_jobs_stalled_total",
      "farm_events_persisted_total",
      "farm_event_persist_lag_seconds",
      "farm_sse_connections",
      "farm_admission_rejections_total",
      "http_server_request_duration_seconds_bucket",
    ]) {
      expect([...covered], family).to.include(family);
    }
  });

  it("use only valid PromQL (promtool check rules)", function () {
    skipWithoutPromtool(this, "PromQL check");
    const rules = DASHBOARDS.flatMap((d) =>
      d.panels.flatMap((p, i) =>
        p.targets.map((t, j) => ({
          record: `dashboard:${d.uid.replaceAll("-", "_")}:${i}_${j}`,
          expr: withVariables(t.expr),
        })),
      ),
    );
    const dir = mkdtempSync(path.join(os.tmpdir(), "farm-dashboards-"));
    try {
      const file = path.join(dir, "panels.yml");
      writeFileSync(file, stringify({ groups: [{ name: "dashboard-queries", rules }] }));
      const run = promtool(["check", "rules", file]);
      expect(run.status, run.output).to.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
