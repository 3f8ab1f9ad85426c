/**
 * Renders dashboards/panels.ts to Grafana dashboard JSON (schema 39) in dashboards/grafana/:
 * a datasource variable, `job` and `instance` variables, and every panel with its unit and
 * description. `npm run dashboards:build` writes the files; `renderDashboard` is what the test
 * compares them with.
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DASHBOARDS, type DashboardSpec, type PanelSpec } from "./panels.js";

/** Grafana's reference to the dashboard's `datasource` variable (its syntax, not JS's). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable syntax
export const DATASOURCE_UID = "${datasource}";
const DATASOURCE = { type: "prometheus", uid: DATASOURCE_UID };
const GRID_COLUMNS = 24;

function variables() {
  const query = (name: string, label: string, expr: string) => ({
    name,
    label,
    type: "query",
    datasource: DATASOURCE,
    query: { query: expr, refId: `${name}-var` },
    definition: expr,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: ".*",
    current: { selected: true, text: ["All"], value: ["$__all"] },
    sort: 1,
  });
  return [
    {
      name: "datasource",
      label: "Data source",
      type: "datasource",
      query: "prometheus",
      current: { selected: true, text: "Prometheus", value: "prometheus" },
    },
    query("job", "Job", "label_values(up, job)"),
    query("instance", "Instance", 'label_values(up{job=~"$job"}, instance)'),
  ];
}

function panel(spec: PanelSpec, id: number, x: number, y: number, width: number, height: number) {
  return {
    id,
    type: spec.type ?? "timeseries",
    title: spec.title,
    description: spec.description,
    datasource: DATASOURCE,
    gridPos: { h: height, w: width, x, y },
    fieldConfig: { defaults: { unit: spec.unit }, overrides: [] },
    options:
      spec.type === "stat"
        ? { reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false } }
        : { legend: { displayMode: "list", placement: "bottom", showLegend: true } },
    targets: spec.targets.map((t, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DATASOURCE,
      expr: t.expr,
      legendFormat: t.legend,
    })),
  };
}

export function renderDashboard(spec: DashboardSpec) {
  const panels = [];
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  for (const [i, p] of spec.panels.entries()) {
    const [width, height] = p.type === "stat" ? [6, 5] : [12, 8];
    if (x + width > GRID_COLUMNS) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    panels.push(panel(p, i + 1, x, y, width, height));
    x += width;
    rowHeight = Math.max(rowHeight, height);
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ["wunder-farm"],
    timezone: "browser",
    schemaVersion: 39,
    version: 1,
    editable: true,
    refresh: "30s",
    time: { from: "now-1h", to: "now" },
    templating: { list: variables() },
    panels,
  };
}

export function dashboardFile(spec: DashboardSpec): string {
  return `${JSON.stringify(renderDashboard(spec), null, 2)}\n`;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const spec of DASHBOARDS) {
    writeFileSync(path.join(HERE, "grafana", `${spec.uid}.json`), dashboardFile(spec));
  }
  console.log(`wrote ${DASHBOARDS.length} dashboards to dashboards/grafana/`);
}
