import { createHash } from "node:crypto";
import { expect } from "chai";
import {
  McpToolNamer,
  type McpToolRef,
  mcpDisplayName,
  qualifyMcpToolNames,
  sanitizeToolName,
} from "../../../src/tools/mcp/tool-names.js";
import { TOOL_NAME_PATTERN } from "../../../src/tools/source.js";

const sha8 = (server: string, tool: string, attempt = 0) =>
  createHash("sha1")
    .update(attempt === 0 ? `${server}\0${tool}` : `${server}\0${tool}\0${attempt}`)
    .digest("hex")
    .slice(0, 8);

describe("tools/mcp/tool-names", () => {
  it("sanitizes every character outside [A-Za-z0-9_-], one per code point", () => {
    expect(sanitizeToolName("read-file_2")).to.equal("read-file_2");
    expect(sanitizeToolName("a.b c@d/e")).to.equal("a_b_c_d_e");
    expect(sanitizeToolName("工具")).to.equal("__");
    expect(sanitizeToolName("x😀y")).to.equal("x_y");
    expect(sanitizeToolName("")).to.equal("_");
  });

  it("names a tool <server>__<tool>, displays it server@tool, and resolves it back", () => {
    const names = qualifyMcpToolNames([{ server: "fs", tool: "read_file" }]);
    expect(names.nameOf("fs", "read_file")).to.equal("fs__read_file");
    expect(names.resolve("fs__read_file")).to.deep.equal({ server: "fs", tool: "read_file" });
    expect(names.resolve("nope")).to.equal(undefined);
    expect(names.list()).to.deep.equal([
      { server: "fs", tool: "read_file", name: "fs__read_file", displayName: "fs@read_file" },
    ]);
    expect(mcpDisplayName("fs", "a.b")).to.equal("fs@a.b");
  });

  it("gives a sanitized unicode name without collisions its plain form", () => {
    const names = qualifyMcpToolNames([{ server: "s", tool: "工具" }]);
    expect(names.nameOf("s", "工具")).to.equal("s____");
    expect(names.resolve("s____")).to.deep.equal({ server: "s", tool: "工具" });
  });

  it("resolves names that collide after sanitizing with a hash suffix, keeping an exact owner", () => {
    const names = qualifyMcpToolNames([
      { server: "s", tool: "a.b" },
      { server: "s", tool: "a_b" },
      { server: "s", tool: "a b" },
    ]);
    // `a_b` is already valid and exactly the shared name: it keeps it.
    expect(names.nameOf("s", "a_b")).to.equal("s__a_b");
    expect(names.nameOf("s", "a.b")).to.equal(`s__a_b_${sha8("s", "a.b")}`);
    expect(names.nameOf("s", "a b")).to.equal(`s__a_b_${sha8("s", "a b")}`);
    expect(names.resolve(`s__a_b_${sha8("s", "a.b")}`)).to.deep.equal({ server: "s", tool: "a.b" });
  });

  it("hashes every member of a colliding group when none owns the plain name", () => {
    const names = qualifyMcpToolNames([
      { server: "s", tool: "a.b" },
      { server: "s", tool: "a@b" },
    ]);
    expect(names.nameOf("s", "a.b")).to.equal(`s__a_b_${sha8("s", "a.b")}`);
    expect(names.nameOf("s", "a@b")).to.equal(`s__a_b_${sha8("s", "a@b")}`);
  });

  it("keeps names within 64 chars, cutting long ones and adding the hash", () => {
    const long = "t".repeat(100);
    const names = qualifyMcpToolNames([
      { server: "server", tool: long },
      { server: "server", tool: `${long}x` },
      { server: "s".repeat(40), tool: "y".repeat(40) },
    ]);
    const a = names.nameOf("server", long) ?? "";
    const b = names.nameOf("server", `${long}x`) ?? "";
    expect(a).to.have.length(64);
    expect(a).to.equal(`server__${"t".repeat(64 - 8 - 9)}_${sha8("server", long)}`);
    expect(b).to.have.length(64).and.not.equal(a);
    const c = names.nameOf("s".repeat(40), "y".repeat(40)) ?? "";
    expect(c).to.have.length(64);
    for (const { name } of names.list()) expect(name).to.match(TOOL_NAME_PATTERN);
  });

  it("a name of exactly 64 chars stays plain", () => {
    const tool = "z".repeat(64 - "srv__".length);
    const names = qualifyMcpToolNames([{ server: "srv", tool }]);
    expect(names.nameOf("srv", tool)).to.equal(`srv__${tool}`).and.have.length(64);
  });

  it("never takes a reserved (built-in) name", () => {
    const names = qualifyMcpToolNames([{ server: "read", tool: "file" }], ["read__file"]);
    expect(names.nameOf("read", "file")).to.equal(`read__file_${sha8("read", "file")}`);
  });

  it("re-hashes with an attempt counter when the hashed name is taken too", () => {
    const taken = `s__a__${sha8("s", "a.")}`;
    const names = qualifyMcpToolNames([{ server: "s", tool: "a." }], ["s__a_", taken]);
    expect(names.nameOf("s", "a.")).to.equal(`s__a__${sha8("s", "a.", 1)}`);
  });

  it("is deterministic whatever the input order, and drops exact duplicates", () => {
    const refs: McpToolRef[] = [
      { server: "b", tool: "x.y" },
      { server: "a", tool: "x_y" },
      { server: "a", tool: "x.y" },
      { server: "a", tool: "x-y" },
      { server: "a", tool: "工具" },
      { server: "a", tool: "__" },
      { server: "c", tool: "q".repeat(90) },
      { server: "c", tool: `${"q".repeat(90)}!` },
    ];
    const expected = qualifyMcpToolNames(refs, ["a__x-y"]).list();
    for (let i = 0; i < 20; i++) {
      const shuffled = [...refs, ...refs.slice(0, 3)].sort(() => Math.random() - 0.5);
      expect(qualifyMcpToolNames(shuffled, ["a__x-y"]).list()).to.deep.equal(expected);
    }
    expect(expected).to.have.length(refs.length);
    expect(new Set(expected.map((n) => n.name)).size).to.equal(refs.length);
    for (const { name } of expected) expect(name).to.match(TOOL_NAME_PATTERN);
  });

  describe("McpToolNamer", () => {
    it("names across servers, renames on a new collision, and tells its listeners", () => {
      const namer = new McpToolNamer(["list_files"]);
      let changes = 0;
      namer.onChange(() => changes++);
      namer.setServerTools("a", ["x.y", "list_files"]);
      expect(namer.nameOf("a", "x.y")).to.equal("a__x_y");
      expect(namer.nameOf("a", "list_files")).to.equal("a__list_files");
      expect(changes).to.equal(1);

      namer.setServerTools("a", ["x.y", "list_files"]); // same list: no recompute
      expect(changes).to.equal(1);

      namer.setServerTools("a", ["x.y", "x@y", "list_files"]);
      expect(namer.nameOf("a", "x.y")).to.equal(`a__x_y_${sha8("a", "x.y")}`);
      expect(namer.resolve(`a__x_y_${sha8("a", "x@y")}`)).to.deep.equal({
        server: "a",
        tool: "x@y",
      });
      expect(changes).to.equal(2);

      namer.setServerTools("b", ["t"]);
      expect(namer.nameOf("b", "t")).to.equal("b__t");
      namer.removeServer("a");
      expect(namer.nameOf("a", "x.y")).to.equal(undefined);
      expect(namer.list().map((n) => n.name)).to.deep.equal(["b__t"]);

      namer.setReserved(["b__t"]);
      expect(namer.nameOf("b", "t")).to.equal(`b__t_${sha8("b", "t")}`);
      expect(namer.revision).to.equal(changes);
    });
  });
});
