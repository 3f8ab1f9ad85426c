import { expect } from "chai";
import { BuiltinToolSource } from "../../../src/tools/builtin/builtin-source.js";
import { BUILTIN_TOOLS } from "../../../src/tools/builtin/index.js";
import { McpServerConfigSchema } from "../../../src/tools/mcp/mcp-config.js";
import { addMcpSources } from "../../../src/tools/mcp/mcp-sources.js";
import { ToolRegistry } from "../../../src/tools/registry.js";
import { EVERYTHING_BIN } from "./helpers.js";

describe("tools/mcp sources in the registry", function () {
  this.timeout(60_000);
  let registry: ToolRegistry;

  before(async () => {
    registry = new ToolRegistry();
    registry.add(new BuiltinToolSource(BUILTIN_TOOLS));
    const sources = addMcpSources(registry, {
      everything: McpServerConfigSchema.parse({
        transport: "stdio",
        command: EVERYTHING_BIN,
        allowTools: ["echo", "get-sum"],
      }),
      off: McpServerConfigSchema.parse({ transport: "stdio", command: "nope", enabled: false }),
      missing: McpServerConfigSchema.parse({
        transport: "stdio",
        command: "/nonexistent/wunder-mcp-server",
      }),
    });
    expect(sources.map((s) => s.id)).to.deep.equal(["mcp:everything", "mcp:missing"]);
    await registry.start();
  });
  after(() => registry.close());

  it("offers the MCP tools after the built-ins, by model and by display name", () => {
    const names = registry.names();
    expect(names.slice(0, BUILTIN_TOOLS.length)).to.deep.equal(BUILTIN_TOOLS.map((t) => t.name));
    expect(names.slice(BUILTIN_TOOLS.length)).to.deep.equal([
      "everything__echo",
      "everything__get-sum",
    ]);
    expect(registry.lookup("everything@echo")?.name).to.equal("everything__echo");
    expect([...registry.toolSet(null).byName.keys()]).to.include("everything__get-sum");
  });

  it("reports each source's health", () => {
    const statuses = registry.sourceStatuses();
    expect(statuses.find((s) => s.id === "mcp:everything")).to.include({
      available: true,
      tools: 2,
    });
    expect(statuses.find((s) => s.id === "mcp:missing")).to.include({
      available: false,
      error: "command not found: /nonexistent/wunder-mcp-server",
      tools: 0,
    });
  });
});
