/**
 * MCP servers that do not work: missing command, no answer to `initialize`, a crash at startup,
 * an unreachable URL — the source stays unavailable with a clear error, never throws, never
 * leaks secrets, and keeps trying with backoff.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { McpServerConfigSchema } from "../../../src/tools/mcp/mcp-config.js";
import { McpToolSource } from "../../../src/tools/mcp/mcp-source.js";
import { stdioServerEnv } from "../../../src/tools/mcp/mcp-transport.js";
import { DEFAULT_RESTART_POLICY, restartDelay } from "../../../src/tools/mcp/restart-policy.js";
import { freePort } from "../../helpers/ports.js";
import { pidAlive, waitFor } from "./helpers.js";

describe("tools/mcp source: failures", function () {
  this.timeout(30_000);
  const sources: McpToolSource[] = [];
  let tmp: string;
  const logged: { message: string; meta?: Record<string, unknown> }[] = [];
  const logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (message: string, meta?: Record<string, unknown>) =>
      logged.push({ message, ...(meta ? { meta } : {}) }),
  };
  const open = (name: string, config: Record<string, unknown>, initialMs = 5_000) => {
    const source = new McpToolSource({
      name,
      config: McpServerConfigSchema.parse(config),
      restart: { initialMs, maxMs: 10_000 },
      logger,
    });
    sources.push(source);
    return source;
  };

  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), "wunder-mcp-"));
  });
  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.close()));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it("a command that does not exist: unavailable with a clear error, and no throw", async () => {
    const source = open("missing", {
      transport: "stdio",
      command: "/nonexistent/wunder-mcp-server",
    });
    await source.start();
    expect(source.health()).to.include({
      available: false,
      error: "command not found: /nonexistent/wunder-mcp-server",
    });
    expect(source.tools()).to.deep.equal([]);
    expect(await source.checkHealth()).to.include({ available: false });
    await source.refresh(); // tries again now; never throws
    expect(source.health().available).to.equal(false);
  });

  it("retries a failing server with growing delays", async () => {
    const source = open(
      "retry",
      { transport: "stdio", command: "/nonexistent/wunder-mcp-server" },
      40,
    );
    await source.start();
    const started = Date.now();
    await waitFor(() => source.connection.stats.connects >= 4, 5_000, "three more attempts");
    // 20-40 ms, 40-80 ms, 80-160 ms: at least 140 ms in all.
    expect(Date.now() - started).to.be.greaterThanOrEqual(130);
    expect(source.health().available).to.equal(false);
  });

  it("a server that never answers initialize is unavailable after startupTimeoutMs, and killed", async () => {
    const pidFile = path.join(tmp, "hang.pid");
    const source = open("hang", {
      transport: "stdio",
      command: process.execPath,
      args: [
        "-e",
        "require('fs').writeFileSync(process.argv[1], String(process.pid)); setInterval(() => {}, 1000)",
        pidFile,
      ],
      startupTimeoutMs: 500,
    });
    const started = Date.now();
    await source.start();
    const elapsed = Date.now() - started;
    expect(elapsed).to.be.within(450, 5_000);
    expect(source.health()).to.include({
      available: false,
      error: "did not finish startup (initialize and tools/list) within 500 ms",
    });
    const pid = Number(await readFile(pidFile, "utf8"));
    await waitFor(() => !pidAlive(pid), 5_000, "the hung server to be killed");
  });

  it("a server that exits at startup: its stderr in the log (not the error), secrets scrubbed", async () => {
    const source = open("crash", {
      transport: "stdio",
      command: process.execPath,
      args: ["-e", "console.error('boom: bad token ' + process.env.API_TOKEN); process.exit(3)"],
      env: { API_TOKEN: "tok-very-secret-123" },
    });
    await source.start();
    const health = source.health();
    expect(health.available).to.equal(false);
    expect(health.error).to.include("the server process exited");
    expect(health.error).to.include("its stderr is in the worker's log");
    expect(health.error).not.to.include("boom");
    const line = logged.find(
      (l) => l.message === "mcp server stderr" && l.meta?.server === "crash",
    );
    expect(line?.meta?.stderr).to.include("boom: bad token [redacted]");
    expect(JSON.stringify(logged)).not.to.include("tok-very-secret-123");
  });

  it("an unreachable HTTP server: no header values, credentials or query in the error", async () => {
    const port = await freePort();
    const headers = { Authorization: "Bearer header-secret-value", "X-Key": "another-secret" };
    const refused = open("refused", {
      transport: "http",
      url: `http://127.0.0.1:${port}/mcp?api_key=query-secret-value`,
      headers,
    });
    const withUser = open("userinfo", {
      transport: "http",
      url: `http://agent:pass-secret-value@127.0.0.1:${port}/mcp`,
      headers,
    });
    await Promise.all([refused.start(), withUser.start()]);
    const errors = [refused.health(), withUser.health()].map((h) => {
      expect(h.available).to.equal(false);
      return h.error ?? "";
    });
    expect(errors[0]).to.include("ECONNREFUSED").and.include(`[http://127.0.0.1:${port}/mcp]`);
    expect(errors[1]).to.include(`[http://127.0.0.1:${port}/mcp]`);
    for (const secret of [
      "pass-secret-value",
      "query-secret-value",
      "header-secret-value",
      "another-secret",
    ]) {
      for (const error of errors) expect(error).not.to.include(secret);
    }
  });

  it("a disabled server is never started", async () => {
    const source = open("off", {
      transport: "stdio",
      command: "/nonexistent/wunder-mcp-server",
      enabled: false,
    });
    await source.start();
    expect(source.connection.stats.connects).to.equal(0);
    expect(source.health()).to.include({ available: false, error: "disabled in config" });
  });

  it("restartDelay doubles from initialMs to maxMs with jitter in [½, 1]", () => {
    const policy = DEFAULT_RESTART_POLICY;
    expect(restartDelay(0, policy, () => 0)).to.equal(250);
    expect(restartDelay(0, policy, () => 1)).to.equal(500);
    expect(restartDelay(1, policy, () => 1)).to.equal(1_000);
    expect(restartDelay(3, policy, () => 1)).to.equal(4_000);
    expect(restartDelay(6, policy, () => 1)).to.equal(30_000);
    expect(restartDelay(1_000, policy, () => 0.5)).to.equal(22_500);
  });

  it("stdioServerEnv keeps PATH, HOME and LANG of the parent and adds the configured env", () => {
    const env = stdioServerEnv(
      { EXTRA: "1", PATH: "/custom" },
      { PATH: "/bin", HOME: "/home/x", LANG: "C.UTF-8", SECRET: "s", OPENAI_API_KEY: "k" },
    );
    const defined = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined));
    expect(defined).to.deep.equal({
      PATH: "/custom",
      HOME: "/home/x",
      LANG: "C.UTF-8",
      EXTRA: "1",
    });
  });
});
