import { expect } from "chai";
import { BuiltinToolSource } from "../../../src/tools/builtin/builtin-source.js";
import { BUILTIN_TOOLS } from "../../../src/tools/builtin/index.js";
import { ToolRegistry } from "../../../src/tools/registry.js";

/** The specs the model is shown for every built-in, built the way a worker builds them. */
function builtinSpecs(registry = registryOfBuiltins()) {
  return registry.toolSet(null).specs;
}

function registryOfBuiltins(): ToolRegistry {
  const registry = new ToolRegistry();
  registry.add(new BuiltinToolSource(BUILTIN_TOOLS));
  return registry;
}

interface JsonSchemaObject {
  type: string;
  properties: Record<string, { type: string; description?: string; [k: string]: unknown }>;
  required?: string[];
  $schema?: string;
}

describe("tools/builtin", () => {
  it("lists the tools in order with their kinds and families", () => {
    expect(BUILTIN_TOOLS.map((t) => [t.name, t.kind, t.family, t.policy.idempotent])).to.deep.equal(
      [
        ["list_files", "read_only", "fs", true],
        ["read_file", "read_only", "fs", true],
        ["search_content", "read_only", "fs", true],
        ["write_file", "mutating", "fs", true],
        ["apply_patch", "mutating", "fs", false],
        ["execute_command", "mutating", "exec", false],
        ["web_fetch", "read_only", "web", true],
        ["final_response", "terminal", "control", true],
      ],
    );
  });

  it("produces OpenAI function specs with JSON-schema parameters", () => {
    const specs = builtinSpecs();
    expect(specs).to.have.length(BUILTIN_TOOLS.length);
    for (const [i, spec] of specs.entries()) {
      const tool = BUILTIN_TOOLS[i];
      expect(spec.type).to.equal("function");
      expect(spec.function.name).to.equal(tool?.name);
      expect(spec.function.description).to.equal(tool?.description).and.to.have.length.above(20);
      const params = spec.function.parameters as unknown as JsonSchemaObject;
      expect(params.type).to.equal("object");
      expect(params).to.not.have.property("$schema");
      // Every field tells the model what it is for.
      for (const [name, field] of Object.entries(params.properties)) {
        expect(field.description, `${spec.function.name}.${name}`).to.be.a("string").and.not.empty;
      }
      // The spec is plain JSON: it survives a round trip unchanged.
      expect(JSON.parse(JSON.stringify(spec))).to.deep.equal(spec);
    }
  });

  it("describes each tool's fields, types and required set (input side: defaults optional)", () => {
    const byName = Object.fromEntries(
      builtinSpecs().map((s) => [
        s.function.name,
        s.function.parameters as unknown as JsonSchemaObject,
      ]),
    );
    const shape = (name: string) => {
      const schema = byName[name] as JsonSchemaObject;
      return {
        fields: Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, v.type])),
        required: [...(schema.required ?? [])].sort(),
      };
    };
    expect(shape("list_files")).to.deep.equal({
      fields: { path: "string", max_depth: "integer" },
      required: [],
    });
    expect(byName.list_files?.properties.max_depth).to.include({
      minimum: 1,
      maximum: 8,
      default: 2,
    });
    expect(shape("read_file")).to.deep.equal({
      fields: { path: "string", start_line: "integer", end_line: "integer" },
      required: ["path"],
    });
    expect(shape("write_file")).to.deep.equal({
      fields: { path: "string", content: "string", append: "boolean" },
      required: ["content", "path"],
    });
    expect(shape("execute_command")).to.deep.equal({
      fields: { command: "string", timeout_ms: "integer" },
      required: ["command"],
    });
    expect(shape("search_content")).to.deep.equal({
      fields: {
        query: "string",
        path: "string",
        regex: "boolean",
        case_sensitive: "boolean",
        file_pattern: "string",
        max_results: "integer",
        context_lines: "integer",
      },
      required: ["query"],
    });
    expect(shape("apply_patch")).to.deep.equal({
      fields: { patch: "string" },
      required: ["patch"],
    });
    expect(shape("web_fetch")).to.deep.equal({
      fields: { url: "string", max_bytes: "integer", timeout_ms: "integer" },
      required: ["url"],
    });
    expect(shape("final_response")).to.deep.equal({
      fields: { content: "string" },
      required: ["content"],
    });
    expect(byName.execute_command?.properties.command).to.include({
      minLength: 1,
      maxLength: 10_000,
    });
  });

  it("computes each spec once and reuses it, for any selection", () => {
    const registry = registryOfBuiltins();
    const first = builtinSpecs(registry);
    const second = builtinSpecs(registry);
    expect(second).to.equal(first);
    expect(registry.toolSet(["execute_command"]).specs[0]).to.equal(first[5]);
  });

  it("selects the named tools, leaving out unknown names; normalize orders them as registered", () => {
    const registry = registryOfBuiltins();
    expect([...registry.toolSet(["web_fetch", "read_file", "nope"]).byName.keys()]).to.deep.equal([
      "web_fetch",
      "read_file",
    ]);
    expect(registry.normalize(["web_fetch", "read_file", "nope"])).to.deep.equal({
      names: ["read_file", "web_fetch"],
      unknown: ["nope"],
    });
  });
});
