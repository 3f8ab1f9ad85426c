/**
 * The MCP source over streamable HTTP, against `server-everything streamableHttp` run as a child
 * process on a free port of 127.0.0.1.
 */
import { type ChildProcess, spawn } from "node:child_process";
import os from "node:os";
import { expect } from "chai";
import { McpServerConfigSchema } from "../../../src/tools/mcp/mcp-config.js";
import { McpToolSource } from "../../../src/tools/mcp/mcp-source.js";
import type { ToolEntry } from "../../../src/tools/source.js";
import { freePort } from "../../helpers/ports.js";
import { contextFor } from "../builtin/helpers.js";
import { EVERYTHING_JS, waitFor } from "./helpers.js";

/** Starts the HTTP server and resolves once it listens. */
function startHttpServer(port: number): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [EVERYTHING_JS, "streamableHttp"], {
      env: { PATH: process.env.PATH ?? "", PORT: String(port) },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`http server did not start: ${stderr}`));
    }, 20_000);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      stderr += chunk;
      if (stderr.includes("listening on port")) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`http server exited (${code}): ${stderr}`));
    });
  });
}

async function stopHttpServer(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

describe("tools/mcp source: server-everything over streamable HTTP", function () {
  this.timeout(60_000);
  let port: number;
  let server: ChildProcess | undefined;
  let source: McpToolSource;
  const ctx = () => contextFor(os.tmpdir());
  const tool = (raw: string): ToolEntry => {
    const entry = source.tools().find((t) => t.displayName === `web@${raw}`);
    if (!entry) throw new Error(`no tool ${raw}`);
    return entry;
  };

  before(async () => {
    port = await freePort();
    server = await startHttpServer(port);
    source = new McpToolSource({
      name: "web",
      config: McpServerConfigSchema.parse({
        transport: "http",
        url: `http://127.0.0.1:${port}/mcp`,
        headers: { "X-Wunder-Test": "1" },
        startupTimeoutMs: 20_000,
        callTimeoutMs: 10_000,
      }),
      restart: { initialMs: 100, maxMs: 500 },
    });
    await source.start();
    expect(source.health().available, source.health().error).to.equal(true);
  });
  after(async () => {
    await source?.close();
    await stopHttpServer(server);
  });

  it("lists the tools and calls echo and get-sum", async () => {
    expect(source.id).to.equal("mcp:web");
    expect(source.tools().map((t) => t.name)).to.include.members(["web__echo", "web__get-sum"]);
    expect(await tool("echo").call({ message: "over http" }, ctx())).to.deep.equal({
      ok: true,
      data: "Echo: over http",
    });
    expect(await tool("get-sum").call({ a: 40, b: 2 }, ctx())).to.deep.equal({
      ok: true,
      data: "The sum of 40 and 2 is 42.",
    });
  });

  it("pings, and cancels a call when the caller aborts", async () => {
    expect((await source.checkHealth()).available).to.equal(true);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 150);
    const started = Date.now();
    const out = await tool("trigger-long-running-operation").call(
      { duration: 5, steps: 5 },
      contextFor(os.tmpdir(), { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, data: null, error: "aborted" });
    expect(Date.now() - started).to.be.lessThan(3_000); // the operation takes 5 s
  });

  it("a server that went away: unavailable, calls fail as transient, reconnects when it is back", async () => {
    await stopHttpServer(server);
    server = undefined;
    const health = await source.checkHealth();
    expect(health.available).to.equal(false);
    const out = await tool("echo").call({ message: "anyone?" }, ctx());
    expect(out.ok).to.equal(false);
    expect(out.transient).to.equal(true);
    expect(out.error).to.match(/^mcp server web is unavailable: /);

    server = await startHttpServer(port);
    await waitFor(() => source.health().available, 20_000, "the source to reconnect");
    expect(await tool("echo").call({ message: "back" }, ctx())).to.deep.equal({
      ok: true,
      data: "Echo: back",
    });
  });
});
