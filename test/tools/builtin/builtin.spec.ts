import { expect } from "chai";
import { BUILTIN_TOOLS, toolSpecs } from "../../../src/tools/builtin/index.js";

interface JsonSchemaObject {
  type: string;
  properties: Record<string, { type: string; description?: string; [k: string]: unknown }>;
  required?: string[];
  $schema?: string;
}

describe("tools/builtin", () => {
  it("lists the four tools in order and finds them by name", () => {
    expect(BUILTIN_TOOLS.map((t) => t.name)).to.deep.equal([
      "list_files",
      "read_file",
      "write_file",
      "execute_command",
    ]);
    expect(BUILTIN_TOOLS.map((t) => t.kind)).to.deep.equal([
      "read_only",
      "read_only",
      "mutating",
      "mutating",
    ]);
  });

  it("produces OpenAI function specs with JSON-schema parameters", () => {
    const specs = toolSpecs(BUILTIN_TOOLS);
    expect(specs).to.have.length(4);
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
      toolSpecs(BUILTIN_TOOLS).map((s) => [
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
    expect(byName.execute_command?.properties.command).to.include({
      minLength: 1,
      maxLength: 10_000,
    });
  });

  it("computes each spec once and reuses it", () => {
    const first = toolSpecs(BUILTIN_TOOLS);
    const second = toolSpecs(BUILTIN_TOOLS);
    for (const [i, spec] of first.entries()) expect(second[i]).to.equal(spec);
    expect(toolSpecs([BUILTIN_TOOLS[3] as (typeof BUILTIN_TOOLS)[number]])[0]).to.equal(first[3]);
  });
});
