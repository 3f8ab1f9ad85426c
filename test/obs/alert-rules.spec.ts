/**
 * The alert rules in dashboards/alerts.yml: `promtool check rules` accepts them, `promtool test
 * rules` passes, and every alert has a case that fires and a case that stays quiet. Skipped,
 * and said so, where promtool is missing.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { parse } from "yaml";
import { promtool, skipWithoutPromtool } from "../helpers/promtool.js";

const DASHBOARDS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dashboards");

interface RuleFile {
  groups: { rules: { alert?: string; record?: string }[] }[];
}
interface RuleTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

describe("alert rules", () => {
  const rules = parse(readFileSync(path.join(DASHBOARDS, "alerts.yml"), "utf8")) as RuleFile;
  const tests = parse(readFileSync(path.join(DASHBOARDS, "alerts.test.yml"), "utf8")) as RuleTests;
  const alerts = rules.groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));

  it("has a case that fires and one that stays quiet for every alert", () => {
    expect(alerts.length).to.be.at.least(10);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires`,
      ).to.equal(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays quiet`,
      ).to.equal(true);
    }
  });

  describe("promtool", () => {
    before(function () {
      skipWithoutPromtool(this, "promtool rule checks");
    });

    it("accepts the rules (promtool check rules)", () => {
      const check = promtool(["check", "rules", "alerts.yml"], { cwd: DASHBOARDS });
      expect(check.status, check.output).to.equal(0);
    });

    it("passes the unit tests (promtool test rules)", () => {
      const run = promtool(["test", "rules", "alerts.test.yml"], { cwd: DASHBOARDS });
      expect(run.status, run.output).to.equal(0);
      expect(run.output).to.contain("SUCCESS");
    });
  });
});
