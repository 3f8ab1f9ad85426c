/**
 * The MCP source against a small scripted server (the SDK's low-level `Server`, run with
 * `node -e`): odd tool names, error results, mixed content, schemas ajv cannot compile, a tool
 * list that changes at run time, and cancellations the server can count.
 */
import os from "node:os";
import { expect } from "chai";
import { McpServerConfigSchema } from "../../../src/tools/mcp/mcp-config.js";
import { McpToolSource } from "../../../src/tools/mcp/mcp-source.js";
import { McpToolNamer } from "../../../src/tools/mcp/tool-names.js";
import type { ToolEntry } from "../../../src/tools/source.js";
import { contextFor } from "../builtin/helpers.js";
import { ROOT, waitFor } from "./helpers.js";

const FIXTURE_SERVER = `
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { CallToolRequestSchema, ListToolsRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const object = { type: "object", properties: {} };
const tools = [
  { name: "say.hello", description: "Says hello", annotations: { readOnlyHint: true },
    inputSchema: { type: "object", properties: { who: { type: "string" } }, required: ["who"] } },
  { name: "工具", inputSchema: object },
  { name: "plain", description: "Plain", annotations: { idempotentHint: true }, inputSchema: object },
  { name: "odd-schema", description: "Its schema cannot be compiled",
    inputSchema: { type: "object", properties: { x: { $ref: "#/definitions/missing" } } } },
  { name: "draft2020", description: "2020-12 schema", inputSchema: {
    $schema: "https://json-schema.org/draft/2020-12/schema", type: "object",
    properties: { n: { type: "integer" } }, required: ["n"] } },
  { name: "fail", description: "Always fails", inputSchema: object },
  { name: "mixed", description: "Mixed content", inputSchema: object },
  { name: "wait", description: "Waits until cancelled", inputSchema: object },
  { name: "cancelled", description: "How many calls were cancelled", inputSchema: object },
  { name: "add-tool", description: "Adds a tool", inputSchema: object },
  { name: "block", description: "Blocks the event loop for a while", inputSchema: object },
];
let cancelled = 0;
const server = new Server({ name: "fixture", version: "1.0.0" }, { capabilities: { tools: { listChanged: true } } });
server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools }));
server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
  const { name, arguments: args = {} } = request.params;
  const text = (t) => ({ content: [{ type: "text", text: t }] });
  switch (name) {
    case "fail":
      return { isError: true, content: [{ type: "text", text: "it failed on purpose" }] };
    case "mixed":
      return { content: [
        { type: "text", text: "head" },
        { type: "image", data: "AAECAwQF", mimeType: "image/png" },
        { type: "audio", data: "AAEC", mimeType: "audio/wav" },
        { type: "resource", resource: { uri: "file:///a.txt", mimeType: "text/plain", text: "inline" } },
        { type: "resource", resource: { uri: "file:///b.bin", blob: "AAECAw==" } },
        { type: "resource_link", uri: "file:///c", name: "c" },
      ] };
    case "wait":
      return new Promise((resolve) => extra.signal.addEventListener("abort", () => {
        cancelled++;
        resolve(text("cancelled"));
      }));
    case "cancelled":
      return text(String(cancelled));
    case "block": {
      const until = Date.now() + 3000;
      while (Date.now() < until) {}
      return text("unblocked");
    }
    case "add-tool":
      tools.push({ name: "added", description: "Added later", inputSchema: object });
      await server.sendToolListChanged();
      return text("added");
    default:
      return text(JSON.stringify({ name, args }));
  }
});
await server.connect(new StdioServerTransport());
`;

function fixture(extra: Record<string, unknown> = {}) {
  return McpServerConfigSchema.parse({
    transport: "stdio",
    command: process.execPath,
    args: ["--input-type=module", "-e", FIXTURE_SERVER],
    cwd: ROOT,
    startupTimeoutMs: 20_000,
    ...extra,
  });
}

async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("tools/mcp source: scripted server", function () {
  this.timeout(60_000);
  const ctx = () => contextFor(os.tmpdir());
  const namer = new McpToolNamer(["fix__plain"]);
  let source: McpToolSource;
  const byDisplay = (display: string): ToolEntry => {
    const entry = source.tools().find((t) => t.displayName === display);
    if (!entry) throw new Error(`no tool ${display}`);
    return entry;
  };

  before(async () => {
    source = new McpToolSource({
      name: "fix",
      config: fixture({ description: "The fixture server", callTimeoutMs: 5_000 }),
      namer,
    });
    await source.start();
    expect(source.health().available, source.health().error).to.equal(true);
  });
  after(() => source.close());

  it("names tools through the shared namer: sanitised, reserved names avoided", () => {
    expect(byDisplay("fix@say.hello").name).to.equal("fix__say_hello");
    expect(byDisplay("fix@工具").name).to.equal("fix____");
    // `fix__plain` is reserved (a built-in's name): the MCP tool gets a hashed name.
    expect(byDisplay("fix@plain").name).to.match(/^fix__plain_[0-9a-f]{8}$/);
    expect(namer.resolve(byDisplay("fix@plain").name)).to.deep.equal({
      server: "fix",
      tool: "plain",
    });
  });

  it("derives kind, idempotency and the description fallback from the listing", () => {
    expect(byDisplay("fix@say.hello")).to.include({
      kind: "read_only",
      idempotent: true,
      parallelSafe: true,
    });
    expect(byDisplay("fix@plain")).to.include({
      kind: "mutating",
      idempotent: true,
      parallelSafe: false,
    });
    expect(byDisplay("fix@工具")).to.include({
      kind: "mutating",
      idempotent: false,
      description: "The fixture server",
      timeoutMs: 5_000,
    });
  });

  it("calls a tool by its raw name", async () => {
    const out = await byDisplay("fix@say.hello").call({ who: "you" }, ctx());
    expect(out).to.deep.equal({
      ok: true,
      data: JSON.stringify({ name: "say.hello", args: { who: "you" } }),
    });
    const unicode = await byDisplay("fix@工具").call(undefined, ctx());
    expect(unicode.data).to.equal(JSON.stringify({ name: "工具", args: {} }));
  });

  it("turns an isError result into ok:false with its text, not transient", async () => {
    expect(await byDisplay("fix@fail").call({}, ctx())).to.deep.equal({
      ok: false,
      data: null,
      error: "it failed on purpose",
    });
  });

  it("maps mixed content to compact JSON without base64", async () => {
    const out = await byDisplay("fix@mixed").call({}, ctx());
    expect(out).to.deep.equal({
      ok: true,
      data: [
        "head",
        { type: "image", mime_type: "image/png", bytes: 6 },
        { type: "audio", mime_type: "audio/wav", bytes: 3 },
        { type: "resource", uri: "file:///a.txt", mime_type: "text/plain", text: "inline" },
        { type: "resource", uri: "file:///b.bin", mime_type: null, bytes: 4 },
        { type: "resource_link", uri: "file:///c", name: "c", mime_type: null },
      ],
    });
  });

  it("validates with the schema's dialect, and skips a schema ajv cannot compile", () => {
    const v2020 = byDisplay("fix@draft2020");
    expect(v2020.validate({ n: 1.5 })).to.deep.equal({ ok: false, issues: ["n: must be integer"] });
    expect(v2020.validate({ n: 2 })).to.deep.equal({ ok: true, value: { n: 2 } });
    expect(v2020.inputSchema).not.to.have.property("$schema");
    const odd = byDisplay("fix@odd-schema");
    expect(odd.validate({ x: 1 })).to.deep.equal({ ok: true, value: { x: 1 } });
    expect(odd.validate(undefined)).to.deep.equal({ ok: true, value: {} });
    expect(odd.validate([1])).to.deep.equal({
      ok: false,
      issues: ["(arguments): must be an object"],
    });
  });

  it("cancels on the server when the caller aborts or the call times out", async () => {
    const cancelledCount = async () => (await byDisplay("fix@cancelled").call({}, ctx())).data;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const out = await byDisplay("fix@wait").call(
      {},
      contextFor(os.tmpdir(), { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, data: null, error: "aborted" });
    await eventually(async () => (await cancelledCount()) === "1", "the server to see the abort");

    const quick = new McpToolSource({ name: "quick", config: fixture({ callTimeoutMs: 200 }) });
    try {
      await quick.start();
      const wait = quick.tools().find((t) => t.displayName === "quick@wait");
      const timedOut = await wait?.call({}, ctx());
      expect(timedOut).to.deep.equal({
        ok: false,
        data: null,
        error: "mcp server quick did not answer within 200 ms",
        transient: true,
      });
      const count = quick.tools().find((t) => t.displayName === "quick@cancelled");
      await eventually(
        async () => (await count?.call({}, ctx()))?.data === "1",
        "the server to see the timeout's cancellation",
      );
    } finally {
      await quick.close();
    }
  });

  it("re-lists on tools/list_changed and tells its listeners", async () => {
    let changes = 0;
    const unsubscribe = source.onChange(() => changes++);
    const version = byDisplay("fix@say.hello");
    expect(await byDisplay("fix@add-tool").call({}, ctx())).to.include({ ok: true });
    await waitFor(
      () => source.tools().some((t) => t.displayName === "fix@added"),
      5_000,
      "the added tool",
    );
    unsubscribe();
    expect(changes).to.be.greaterThanOrEqual(1);
    expect(byDisplay("fix@added").name).to.equal("fix__added");
    // Unchanged tools keep their entry objects.
    expect(byDisplay("fix@say.hello")).to.equal(version);
  });

  it("a second source on the same namer shares the name space", async () => {
    const other = new McpToolSource({
      name: "fix2",
      config: fixture({ allowTools: ["plain"] }),
      namer,
    });
    try {
      await other.start();
      expect(other.tools().map((t) => t.name)).to.deep.equal(["fix2__plain"]);
      expect(namer.resolve("fix2__plain")).to.deep.equal({ server: "fix2", tool: "plain" });
    } finally {
      await other.close();
    }
    expect(namer.resolve("fix2__plain")).to.equal(undefined);
  });

  it("re-lists in the background when tools() finds the list older than toolsCacheTtlMs", async () => {
    const ttl = new McpToolSource({ name: "ttl", config: fixture({ toolsCacheTtlMs: 200 }) });
    try {
      await ttl.start();
      const listings = ttl.connection.stats.listings;
      ttl.tools();
      expect(ttl.connection.stats.listings).to.equal(listings); // fresh: served from the cache
      await new Promise((resolve) => setTimeout(resolve, 250));
      ttl.tools();
      await waitFor(() => ttl.connection.stats.listings > listings, 5_000, "a background listing");
    } finally {
      await ttl.close();
    }
  });

  it("a server that stops answering pings is marked unavailable and restarted", async () => {
    const stuck = new McpToolSource({
      name: "stuck",
      config: fixture(),
      pingTimeoutMs: 200,
      restart: { initialMs: 50, maxMs: 200 },
    });
    try {
      await stuck.start();
      const pid = stuck.connection.pid;
      const block = stuck.tools().find((t) => t.displayName === "stuck@block");
      const blocked = block?.call({}, ctx());
      await new Promise((resolve) => setTimeout(resolve, 100));
      const health = await stuck.checkHealth();
      expect(health).to.include({
        available: false,
        error: "did not answer a ping within 200 ms",
      });
      expect(await blocked).to.include({ ok: false, transient: true });
      await waitFor(() => stuck.health().available, 20_000, "the restarted server");
      expect(stuck.connection.pid).to.not.equal(pid);
    } finally {
      await stuck.close();
    }
  });
});
