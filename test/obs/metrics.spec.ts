/**
 * The farm's Prometheus metrics over real HTTP, after real traffic (API, worker, persister and
 * simulator in this process, so one registry serves them all): every family a dashboard needs
 * moves when the thing it counts happens, and no label carries an id.
 */
import { expect } from "chai";
import { allTurnEvents, http, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

type Samples = Map<string, number>;

/** `name{labels} value` lines, keyed by `name{labels}` exactly as exposed. */
function parse(text: string): Samples {
  const samples: Samples = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** Sum of the samples of `name` whose labels include every `key="value"` of `labels`. */
function total(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const [key, value] of samples) {
    const bare = key.split("{")[0];
    if (bare !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}

describe("metrics (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start();
  });
  after(async () => {
    await farm.stop();
  });

  const scrape = async () => parse((await http<string>(farm.url, "GET", "/metrics")).body);

  it("moves every family with real traffic, with bounded labels only", async () => {
    const before = await scrape();
    const first = await submit(farm.url, { input: "please list the files" });
    const turn = await waitForTurn(farm.url, first.turn_id);
    expect(turn.status).to.equal("completed");
    const second = await waitForTurn(
      farm.url,
      (await submit(farm.url, { input: "and now?", session_id: first.session_id })).turn_id,
    );
    const compaction = await http<{ turn_id: string }>(
      farm.url,
      "POST",
      `/v1/sessions/${first.session_id}/compaction`,
      {},
    );
    const compacted = await waitForTurn(farm.url, compaction.body.turn_id);
    // A stream resumed after the turn's end: answered 204, counted as a resume.
    const events = await allTurnEvents(farm.url, first.turn_id);
    const resumed = await fetch(`${farm.url}/v1/turns/${first.turn_id}/events`, {
      headers: { "Last-Event-ID": String(events.at(-1)?.seq) },
    });
    expect(resumed.status).to.equal(204);
    const after = await scrape();

    const grew = (name: string, labels: Record<string, string> = {}) =>
      total(after, name, labels) - total(before, name, labels);
    const model = { gen_ai_request_model: "sim" };
    expect(
      grew("gen_ai_client_operation_duration_seconds_count", { ...model, error_type: "" }),
    ).to.be.at.least(4);
    expect(grew("gen_ai_client_operation_time_to_first_chunk_seconds_count", model)).to.be.at.least(
      4,
    );
    // The billed input tokens of every call, summary calls included, are the turns' own sums.
    const billed = [turn, second, compacted].reduce((n, t) => n + Number(t.usage?.input_tokens), 0);
    expect(
      grew("gen_ai_client_token_usage_sum", { ...model, gen_ai_token_type: "input" }),
    ).to.equal(billed);
    expect(
      grew("gen_ai_execute_tool_duration_seconds_count", { gen_ai_tool_name: "list_files" }),
    ).to.equal(1);
    expect(grew("farm_turn_queue_wait_seconds_count", { kind: "agent" })).to.equal(2);
    expect(grew("farm_turn_queue_wait_seconds_count", { kind: "compaction" })).to.equal(1);
    expect(
      grew("farm_turns_finished_total", {
        kind: "agent",
        status: "completed",
        stop_reason: "model_response",
      }),
    ).to.equal(2);
    expect(grew("farm_turn_duration_seconds_count", { kind: "compaction" })).to.equal(1);
    expect(grew("farm_compactions_total", { reason: "manual" })).to.equal(
      compacted.stop_reason === "compacted" ? 1 : 0,
    );
    expect(grew("farm_scheduler_dispatched_total", { tier: "default" })).to.equal(3);
    expect(grew("farm_sse_resumes_total", { outcome: "ended" })).to.equal(1);
    expect(grew("farm_events_persisted_total")).to.be.above(0);
    // Each append batch observes its session's hot stream; the first session holds all 3 turns.
    expect(grew("farm_hot_stream_length_entries_count")).to.be.above(0);
    expect(after.get('farm_hot_stream_length_entries_bucket{le="5"}') ?? 0).to.equal(0);
    expect(total(after, "farm_worker_concurrency")).to.equal(farm.config.worker.concurrency);
    expect(after.has("farm_worker_active_jobs")).to.equal(true);
    for (const state of ["waiting", "dispatched", "active", "parked", "failed_jobs"]) {
      expect(after.has(`farm_queue_jobs{state="${state}"}`), state).to.equal(true);
    }
    expect(after.get("farm_queue_oldest_waiting_age_seconds")).to.equal(0);
    expect(after.has("farm_sse_connections")).to.equal(true);

    // No id in any label: user, session, turn and call ids live in logs and events only.
    const values = [...after.keys()].flatMap((key) =>
      [...key.matchAll(/="([^"]*)"/g)].map((m) => m[1] as string),
    );
    expect(values.length).to.be.above(100);
    for (const value of values) expect(value).to.not.match(/^(turn|sess|call)_[0-9A-Za-z]{10,}/);
    expect(values).to.not.include(first.session_id);
  });
});
