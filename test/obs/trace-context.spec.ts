/**
 * W3C trace context, parsed by the rules of the spec, and followed end to end: the API answers
 * with the request's trace id (X-Trace-Id, error envelopes), stores it with the turn, and the
 * turn's events and a spawned worker's log lines carry it.
 */
import { expect } from "chai";
import { parseTraceparent } from "../../src/obs/trace-context.js";
import { allTurnEvents, type ErrorBody, http, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

describe("obs: trace context", () => {
  it("parses valid traceparent headers and refuses malformed ones", () => {
    expect(parseTraceparent(`00-${TRACE}-${PARENT}-01`)).to.deep.equal({
      traceId: TRACE,
      parentId: PARENT,
      flags: "01",
    });
    // A later version may append fields; version 00 may not.
    expect(parseTraceparent(`01-${TRACE}-${PARENT}-00-extra`)?.traceId).to.equal(TRACE);
    for (const bad of [
      undefined,
      "",
      `00-${TRACE}-${PARENT}-01-extra`,
      `ff-${TRACE}-${PARENT}-01`,
      `00-${"0".repeat(32)}-${PARENT}-01`,
      `00-${TRACE}-${"0".repeat(16)}-01`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`,
      `00-${TRACE.slice(1)}-${PARENT}-01`,
      "garbage",
    ]) {
      expect(parseTraceparent(bad), String(bad)).to.equal(null);
    }
  });

  describe("end to end", function () {
    this.timeout(60_000);
    let farm: TestFarm;
    before(async () => {
      farm = await TestFarm.start({ workers: 0 });
    });
    after(async () => {
      await farm.stop();
    });

    it("carries the caller's trace id from the request to the events and the worker's logs", async () => {
      const worker = await farm.spawnWorker();
      const reply = await http<{ turn_id: string }>(
        farm.url,
        "POST",
        "/v1/turns",
        { input: "please list the files" },
        { traceparent: `00-${TRACE}-${PARENT}-01` },
      );
      expect(reply.headers.get("x-trace-id")).to.equal(TRACE);
      const turn = await waitForTurn(farm.url, reply.body.turn_id);
      expect(turn.status).to.equal("completed");
      const view = await http<{ trace_id?: string }>(farm.url, "GET", `/v1/turns/${turn.turn_id}`);
      expect(view.body.trace_id).to.equal(TRACE);
      // Each read is a request of its own, with its own trace.
      expect(view.headers.get("x-trace-id"))
        .to.match(/^[0-9a-f]{32}$/)
        .and.not.equal(TRACE);

      const events = await allTurnEvents(farm.url, turn.turn_id);
      expect(events.length).to.be.above(5);
      for (const e of events) expect(e.trace_id, e.type).to.equal(TRACE);

      const lines = worker.logs
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.turn_id === turn.turn_id);
      expect(lines.map((l) => l.message)).to.include.members(["turn started", "turn finished"]);
      // From the moment the worker has read the turn, every line names its trace.
      const started = lines.findIndex((l) => l.message === "turn started");
      for (const line of lines.slice(started)) {
        expect(line.trace_id, String(line.message)).to.equal(TRACE);
      }
    });

    it("makes up a trace id when there is none or it is malformed, and puts it in errors", async () => {
      const variants: Record<string, string>[] = [{}, { traceparent: "00-garbage" }];
      for (const headers of variants) {
        const reply = await http<ErrorBody>(
          farm.url,
          "GET",
          "/v1/turns/turn_unknown",
          undefined,
          headers,
        );
        expect(reply.status).to.equal(404);
        const traceId = reply.headers.get("x-trace-id");
        expect(traceId).to.match(/^[0-9a-f]{32}$/);
        expect((reply.body.error as { trace_id?: string }).trace_id).to.equal(traceId);
      }
    });
  });
});
