/**
 * `promtool check metrics` (Debian's Prometheus tools) passes on the metrics of every kind of
 * farm process that serves them: the API (this process, sharing its registry with the in-process
 * persister), the persister's own port, the archiver's, and a spawned worker on its own metrics
 * port. Skipped, and said so, where promtool is missing.
 */
import { expect } from "chai";
import { createLogger } from "../../src/obs/logger.js";
import { type RunningArchiver, startArchiver } from "../../src/roles/archiver-role.js";
import { submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";
import { promtool, skipWithoutPromtool } from "../helpers/promtool.js";

describe("metrics: promtool check metrics", function () {
  this.timeout(60_000);
  let farm: TestFarm;
  let archiver: RunningArchiver;

  before(async function () {
    skipWithoutPromtool(this, "promtool metrics checks");
    farm = await TestFarm.start({ workers: 0 });
    archiver = await startArchiver(
      { ...farm.config, store: { ...farm.config.store, archiverMetricsPort: 0 } },
      createLogger("archiver", "error"),
    );
  });
  after(async () => {
    await archiver?.stop();
    await farm?.stop();
  });

  it("passes for the API, the persister, the archiver and a worker, after traffic", async () => {
    const worker = await farm.spawnWorker({ METRICS_PORT: "0" });
    const turn = await submit(farm.url, { input: "please list the files" });
    expect((await waitForTurn(farm.url, turn.turn_id)).status).to.equal("completed");

    const port = worker.metricsPort;
    expect(port).to.be.above(0);
    const persisterPort = Number(farm.persister?.metricsPort);
    expect(persisterPort).to.be.above(0);
    const sources = {
      api: await (await fetch(`${farm.url}/metrics`)).text(),
      persister: await (await fetch(`http://127.0.0.1:${persisterPort}/metrics`)).text(),
      worker: await (await fetch(`http://127.0.0.1:${port}/metrics`)).text(),
      archiver: await (await fetch(`http://127.0.0.1:${archiver.metricsPort}/metrics`)).text(),
    };
    // Its first pass (nothing past retention yet) ended without a failure.
    const lastPass = /^farm_archive_last_success_timestamp_seconds (\S+)/m.exec(sources.archiver);
    expect(Number(lastPass?.[1])).to.be.above(Date.now() / 1000 - 60);
    const persisted = /^farm_events_persisted_total (\d+)/m.exec(sources.persister)?.[1];
    expect(Number(persisted)).to.be.above(0);
    expect(sources.worker).to.contain("gen_ai_client_operation_duration_seconds_count");
    expect(sources.worker).to.contain("farm_worker_concurrency");
    for (const [process, text] of Object.entries(sources)) {
      const check = promtool(["check", "metrics"], { input: text });
      expect(check.status, `${process}: ${check.output}`).to.equal(0);
    }
  });
});
