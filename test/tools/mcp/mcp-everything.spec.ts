/**
 * The MCP source against the reference server `mcp-server-everything` over stdio.
 */
import os from "node:os";
import { expect } from "chai";
import { McpServerConfigSchema } from "../../../src/tools/mcp/mcp-config.js";
import { McpToolSource } from "../../../src/tools/mcp/mcp-source.js";
import type { ToolEntry } from "../../../src/tools/source.js";
import { TOOL_NAME_PATTERN } from "../../../src/tools/source.js";
import { contextFor } from "../builtin/helpers.js";
import { EVERYTHING_BIN, pidAlive, waitFor } from "./helpers.js";

function everything(extra: Record<string, unknown> = {}) {
  return McpServerConfigSchema.parse({
    transport: "stdio",
    command: EVERYTHING_BIN,
    args: ["stdio"],
    startupTimeoutMs: 20_000,
    ...extra,
  });
}

describe("tools/mcp source: server-everything over stdio", function () {
  this.timeout(60_000);
  const ctx = () => contextFor(os.tmpdir());
  let source: McpToolSource;
  const sources: McpToolSource[] = [];

  const open = async (name: string, extra: Record<string, unknown> = {}, restartMs = 100) => {
    const s = new McpToolSource({
      name,
      config: everything(extra),
      restart: { initialMs: restartMs, maxMs: 1_000 },
    });
    sources.push(s);
    await s.start();
    return s;
  };
  const tool = (s: McpToolSource, raw: string): ToolEntry => {
    const entry = s.tools().find((t) => t.displayName === `${s.server}@${raw}`);
    if (!entry) throw new Error(`no tool ${raw}`);
    return entry;
  };

  before(async () => {
    process.env.WUNDER_FARM_TEST_SECRET = "farm-secret-value";
    source = await open("everything", { env: { WUNDER_MCP_VISIBLE: "visible" } });
  });
  after(async () => {
    delete process.env.WUNDER_FARM_TEST_SECRET;
    await Promise.all(sources.map((s) => s.close()));
  });

  it("connects, lists the tools and reports itself available", () => {
    expect(source.id).to.equal("mcp:everything");
    expect(source.health()).to.include({ available: true });
    const names = source.tools().map((t) => t.name);
    expect(names).to.include.members([
      "everything__echo",
      "everything__get-sum",
      "everything__trigger-long-running-operation",
    ]);
    for (const name of names) expect(name).to.match(TOOL_NAME_PATTERN);
    // A tool the server runs only as a task cannot be called with tools/call: not offered.
    expect(source.rawTools().map((t) => t.name)).not.to.include("simulate-research-query");
  });

  it("builds entries from the listed tools", () => {
    const echo = tool(source, "echo");
    expect(echo).to.include({
      name: "everything__echo",
      displayName: "everything@echo",
      description: "Echoes back the input string",
      kind: "read_only",
      source: "mcp:everything",
      breakerKey: "mcp:everything",
      idempotent: true,
      parallelSafe: true,
      timeoutMs: 120_000,
    });
    expect(echo.version).to.match(/^[0-9a-f]{12}$/);
    expect(echo.inputSchema).to.deep.equal({
      type: "object",
      properties: { message: { type: "string", description: "Message to echo" } },
      required: ["message"],
    });
    const toggle = tool(source, "toggle-simulated-logging");
    expect(toggle).to.include({ kind: "mutating", idempotent: false, parallelSafe: false });
    // Entries are stable objects while nothing changes (the registry caches specs by entry).
    expect(source.tools()).to.equal(source.tools());
    expect(tool(source, "echo")).to.equal(echo);
  });

  it("calls echo and get-sum", async () => {
    const echo = tool(source, "echo");
    expect(echo.validate({ message: "hi" })).to.deep.equal({ ok: true, value: { message: "hi" } });
    expect(await echo.call({ message: "hi" }, ctx())).to.deep.equal({ ok: true, data: "Echo: hi" });
    const sum = await tool(source, "get-sum").call({ a: 2, b: 3 }, ctx());
    expect(sum).to.deep.equal({ ok: true, data: "The sum of 2 and 3 is 5." });
  });

  it("returns structured content as is and summarises images instead of passing base64", async () => {
    const structured = await tool(source, "get-structured-content").call(
      { location: "Chicago" },
      ctx(),
    );
    expect(structured.ok).to.equal(true);
    expect(structured.data).to.have.keys(["temperature", "conditions", "humidity"]);

    const image = await tool(source, "get-tiny-image").call({}, ctx());
    expect(image.ok).to.equal(true);
    const items = image.data as unknown[];
    expect(items).to.have.length(3);
    expect(items[0]).to.be.a("string");
    expect(items[1]).to.deep.include({ type: "image", mime_type: "image/png" });
    expect((items[1] as { bytes: number }).bytes).to.be.greaterThan(1000);
    expect(JSON.stringify(image.data)).not.to.include("iVBORw0KGgo");
  });

  it("rejects invalid arguments with ajv before any call", () => {
    const echo = tool(source, "echo");
    expect(echo.validate({ message: 5 })).to.deep.equal({
      ok: false,
      issues: ["message: must be string"],
    });
    expect(echo.validate({})).to.deep.equal({
      ok: false,
      issues: ["(arguments): must have required property 'message'"],
    });
    expect(echo.validate("hi")).to.deep.equal({
      ok: false,
      issues: ["(arguments): must be an object"],
    });
    const sum = tool(source, "get-sum");
    const bad = sum.validate({ a: "x" });
    expect(bad.ok).to.equal(false);
    expect(bad.ok === false && bad.issues).to.have.members([
      "(arguments): must have required property 'b'",
      "a: must be number",
    ]);
  });

  it("passes only PATH, HOME, LANG and the configured env to the server", async () => {
    const out = await tool(source, "get-env").call({}, ctx());
    expect(out.ok).to.equal(true);
    const env = JSON.parse(out.data as string) as Record<string, string>;
    expect(env.WUNDER_MCP_VISIBLE).to.equal("visible");
    expect(env).not.to.have.property("WUNDER_FARM_TEST_SECRET");
    expect(JSON.stringify(env)).not.to.include("farm-secret-value");
    const allowed = new Set(["PATH", "HOME", "LANG", "WUNDER_MCP_VISIBLE"]);
    for (const key of Object.keys(env)) expect(allowed.has(key), key).to.equal(true);
  });

  it("re-lists on the tools/list_changed the server sends after initialize, and on refresh()", async () => {
    const conn = source.connection;
    await waitFor(() => conn.stats.listChanged >= 1, 5_000, "a list_changed notification");
    await waitFor(() => conn.stats.listings >= 2, 5_000, "the listing it triggers");
    await source.refresh(); // lets any listing still in flight finish
    const before = conn.stats.listings;
    await source.refresh();
    expect(conn.stats.listings).to.equal(before + 1);
    // Concurrent refreshes share listings: never more than one extra after the one in flight.
    await Promise.all([source.refresh(), source.refresh(), source.refresh()]);
    expect(conn.stats.listings).to.equal(before + 3);
  });

  it("checkHealth pings the server", async () => {
    const health = await source.checkHealth();
    expect(health.available).to.equal(true);
  });

  it("applies allowTools and denyTools", async () => {
    const filtered = await open("filtered", {
      allowTools: ["echo", "get-sum", "get-env"],
      denyTools: ["get-env"],
    });
    expect(filtered.tools().map((t) => t.displayName)).to.have.members([
      "filtered@echo",
      "filtered@get-sum",
    ]);
  });

  it("a call that exceeds callTimeoutMs fails as transient, and the server stays usable", async () => {
    const slow = await open("slow", { callTimeoutMs: 300 });
    const started = Date.now();
    const out = await tool(slow, "trigger-long-running-operation").call(
      { duration: 5, steps: 5 },
      ctx(),
    );
    expect(Date.now() - started).to.be.lessThan(3_000); // the operation takes 5 s
    expect(out).to.deep.equal({
      ok: false,
      data: null,
      error: "mcp server slow did not answer within 300 ms",
      transient: true,
    });
    expect(slow.health().available).to.equal(true);
    expect(await tool(slow, "echo").call({ message: "still here" }, ctx())).to.deep.equal({
      ok: true,
      data: "Echo: still here",
    });
  });

  it("an abort of the call's signal cancels it at once", async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(), 200);
    const out = await tool(source, "trigger-long-running-operation").call(
      { duration: 5, steps: 5 },
      contextFor(os.tmpdir(), { signal: controller.signal }),
    );
    expect(Date.now() - started).to.be.lessThan(3_000); // the operation takes 5 s
    expect(out).to.deep.equal({ ok: false, data: null, error: "aborted" });
    const already = await tool(source, "echo").call(
      { message: "x" },
      contextFor(os.tmpdir(), { signal: AbortSignal.abort() }),
    );
    expect(already).to.deep.equal({ ok: false, data: null, error: "aborted" });
  });

  it("a killed server is marked unavailable, then restarted and available again", async () => {
    const crashy = await open("crashy");
    const pid = crashy.connection.pid;
    expect(pid).to.be.a("number");
    const seen: boolean[] = [];
    crashy.onChange(() => seen.push(crashy.health().available));

    process.kill(pid as number, "SIGKILL");
    await waitFor(() => !crashy.health().available, 5_000, "the source to become unavailable");
    expect(crashy.health().error).to.match(/exited|closed/);
    const during = await tool(crashy, "echo").call({ message: "x" }, ctx());
    if (!during.ok) {
      expect(during.transient).to.equal(true);
      expect(during.error).to.match(/^mcp server crashy is unavailable: /);
    }

    await waitFor(() => crashy.health().available, 20_000, "the restarted server");
    expect(crashy.connection.pid).to.be.a("number").and.not.equal(pid);
    expect(crashy.connection.stats.restarts).to.be.greaterThanOrEqual(1);
    expect(seen).to.include(false);
    expect(seen[seen.length - 1]).to.equal(true);
    expect(await tool(crashy, "echo").call({ message: "back" }, ctx())).to.deep.equal({
      ok: true,
      data: "Echo: back",
    });
  });

  it("close() kills the child, withdraws the tools and never restarts", async () => {
    const closing = await open("closing");
    const pid = closing.connection.pid as number;
    expect(pidAlive(pid)).to.equal(true);
    await closing.close();
    await waitFor(() => !pidAlive(pid), 5_000, "the child to exit");
    expect(closing.tools()).to.deep.equal([]);
    expect(closing.health()).to.include({ available: false, error: "closed" });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(closing.connection.state).to.equal("closed");
    expect(closing.connection.pid).to.equal(null);
  });
});
