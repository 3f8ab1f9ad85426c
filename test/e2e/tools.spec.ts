/**
 * Tools end to end (real API, worker, simulator, Redis; a real MCP server over stdio): the
 * catalogue, MCP calls by model and display name, several calls in one round, final_response,
 * live command output, long results kept as artifacts, and the tool-failure guard.
 */
import { createRequire } from "node:module";
import { expect } from "chai";
import type { ToolList } from "../../src/contract/tools.js";
import { allTurnEvents, http, submit, waitForTurn, waitUntil } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const EVERYTHING = createRequire(import.meta.url).resolve(
  "@modelcontextprotocol/server-everything/dist/index.js",
);

describe("tools (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({
      env: {
        MAX_ROUNDS: "8",
        TOOL_FAILURE_GUARD_THRESHOLD: "3",
        MCP_SERVERS: JSON.stringify({
          everything: {
            transport: "stdio",
            command: process.execPath,
            args: [EVERYTHING, "stdio"],
          },
        }),
      },
    });
    await waitUntil(
      "the MCP server's tools",
      async () => {
        const list = await http<ToolList>(farm.url, "GET", "/v1/tools");
        return list.body.tools.some((t) => t.name === "everything__echo" && t.available);
      },
      20_000,
    );
  });
  after(async () => {
    await farm.stop();
  });

  it("lists built-in and MCP tools with their schemas and availability", async () => {
    const { status, body } = await http<ToolList>(farm.url, "GET", "/v1/tools");
    expect(status).to.equal(200);
    const byName = new Map(body.tools.map((t) => [t.name, t]));
    const read = byName.get("read_file");
    expect(read).to.include({ kind: "read_only", source: "builtin", available: true });
    expect(read?.input_schema).to.have.nested.property("properties.path");
    expect(byName.get("final_response")?.kind).to.equal("terminal");
    const echo = byName.get("everything__echo");
    expect(echo).to.include({ display_name: "everything@echo", source: "mcp:everything" });
    expect(body.sources.map((s) => s.id)).to.include.members(["builtin", "mcp:everything"]);
    expect(body.workers).to.equal(1);
  });

  it("asks every worker to refresh its tool sources", async () => {
    const reply = await http<{ workers_notified: number }>(
      farm.url,
      "POST",
      "/v1/admin/tools/refresh",
    );
    expect(reply.status).to.equal(202);
    expect(reply.body.workers_notified).to.equal(1);
  });

  it("calls an MCP tool the turn named by its display name", async () => {
    const accepted = await submit(farm.url, {
      input: '[[sim tool=everything__echo args={"message":"hello mcp"}]] echo it',
      tools: ["everything@echo"],
    });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("completed");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    const result = events.find((e) => e.type === "tool_result");
    expect(result?.data).to.include({ ok: true, tool: "everything__echo", result_v: 2 });
    expect(JSON.stringify(result?.data.data)).to.contain("hello mcp");
    expect(turn.answer).to.contain("hello mcp");
  });

  it("refuses a turn naming a tool nobody offers, with the field in the details", async () => {
    const reply = await http<{ error: { code: string; details: { field: string }[] } }>(
      farm.url,
      "POST",
      "/v1/turns",
      { input: "hi", tools: ["nope@nothing"] },
    );
    expect(reply.status).to.equal(400);
    expect(reply.body.error.details[0]?.field).to.equal("tools");
  });

  it("runs several calls of one round and answers each in call order", async () => {
    const accepted = await submit(farm.url, {
      input: '[[sim tool=list_files args={"path":"."} calls=3]] look around',
    });
    expect((await waitForTurn(farm.url, accepted.turn_id)).status).to.equal("completed");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    const calls = events.filter((e) => e.type === "tool_call");
    const results = events.filter((e) => e.type === "tool_result");
    expect(calls).to.have.length(3);
    expect(results).to.have.length(3);
    const lastCall = events.lastIndexOf(calls[2] as (typeof events)[number]);
    expect(events.indexOf(results[0] as (typeof events)[number])).to.be.above(lastCall);
    for (const r of results) {
      expect((r.data.meta as { policy: { lock: string } }).policy.lock).to.equal("shared");
    }
  });

  it("ends the turn with final_response's content", async () => {
    const accepted = await submit(farm.url, {
      input: '[[sim tool=final_response args={"content":"all done here"}]] finish',
    });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn).to.include({
      status: "completed",
      answer: "all done here",
      stop_reason: "final_tool",
    });
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    expect(events.filter((e) => e.type === "llm_output")).to.have.length(1);
  });

  it("streams a command's output as tool_output_delta events", async () => {
    const accepted = await submit(farm.url, {
      input:
        '[[sim tool=execute_command args={"command":"echo first; sleep 0.3; echo second"}]] run',
    });
    await waitForTurn(farm.url, accepted.turn_id);
    const deltas = (await allTurnEvents(farm.url, accepted.turn_id)).filter(
      (e) => e.type === "tool_output_delta",
    );
    expect(deltas.length).to.be.at.least(2);
    expect(deltas.map((d) => d.data.text).join("")).to.equal("first\nsecond\n");
    expect(deltas[0]?.data.stream).to.equal("stdout");
  });

  it("cuts a long result for the model and stores the whole as an artifact", async () => {
    const accepted = await submit(farm.url, {
      input:
        '[[sim tool=execute_command args={"command":"head -c 30000 /dev/zero | tr \'\\\\0\' x"}]] run',
    });
    await waitForTurn(farm.url, accepted.turn_id);
    const result = (await allTurnEvents(farm.url, accepted.turn_id)).find(
      (e) => e.type === "tool_result",
    );
    const data = result?.data as {
      data: unknown;
      preview: string;
      artifact: { id: string };
      meta: { truncated: boolean; original_chars: number };
    };
    expect(data.data).to.equal(null);
    expect(data.meta.truncated).to.equal(true);
    expect(data.preview).to.match(/chars omitted; the whole output is artifact art_/);
    const artifact = await farm.api.context.store.getArtifact(data.artifact.id);
    expect(artifact?.record.sessionId).to.equal(accepted.session_id);
    expect(artifact?.content.toString()).to.contain("x".repeat(30_000));
  });

  it("stops a turn whose tool keeps failing the same way", async () => {
    const accepted = await submit(farm.url, {
      input: '[[sim tool=read_file args={"path":"missing.txt"} rounds=6]] read it',
    });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("failed");
    expect(turn.stop_reason).to.equal("tool_failure_guard");
    expect(turn.error?.code).to.equal("tool_failure_guard");
    expect(turn.error?.message).to.match(/read_file failed 3 times in a row/);
  });
});
