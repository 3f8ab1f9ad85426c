/**
 * The MCP source against `mcp-server-filesystem` over stdio, confined to a temp folder.
 */
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "chai";
import { McpServerConfigSchema } from "../../../src/tools/mcp/mcp-config.js";
import { McpToolSource } from "../../../src/tools/mcp/mcp-source.js";
import type { ToolEntry } from "../../../src/tools/source.js";
import { contextFor } from "../builtin/helpers.js";
import { FILESYSTEM_BIN } from "./helpers.js";

describe("tools/mcp source: server-filesystem over stdio", function () {
  this.timeout(60_000);
  let dir: string;
  let source: McpToolSource;
  const ctx = () => contextFor(os.tmpdir());
  const tool = (raw: string): ToolEntry => {
    const entry = source.tools().find((t) => t.displayName === `fs@${raw}`);
    if (!entry) throw new Error(`no tool ${raw}`);
    return entry;
  };

  before(async () => {
    dir = await realpath(await mkdtemp(path.join(os.tmpdir(), "wunder-mcp-fs-")));
    await writeFile(path.join(dir, "hello.txt"), "hello from the temp dir\nsecond line\n");
    await mkdir(path.join(dir, "sub"));
    source = new McpToolSource({
      name: "fs",
      config: McpServerConfigSchema.parse({
        transport: "stdio",
        command: FILESYSTEM_BIN,
        args: [dir],
        startupTimeoutMs: 20_000,
      }),
    });
    await source.start();
    expect(source.health().available, source.health().error).to.equal(true);
  });
  after(async () => {
    await source?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("lists its tools with their annotations", () => {
    expect(source.tools().map((t) => t.name)).to.include.members([
      "fs__read_text_file",
      "fs__list_directory",
      "fs__write_file",
    ]);
    expect(tool("list_directory")).to.include({ kind: "read_only", idempotent: true });
    expect(tool("write_file")).to.include({
      kind: "mutating",
      idempotent: true,
      parallelSafe: false,
    });
    expect(tool("move_file")).to.include({ kind: "mutating", idempotent: false });
  });

  it("reads a text file and lists a directory", async () => {
    const read = await tool("read_text_file").call({ path: path.join(dir, "hello.txt") }, ctx());
    expect(read.ok).to.equal(true);
    expect(JSON.stringify(read.data)).to.include("hello from the temp dir");

    const head = await tool("read_text_file").call(
      { path: path.join(dir, "hello.txt"), head: 1 },
      ctx(),
    );
    expect(JSON.stringify(head.data)).to.include("hello from the temp dir");
    expect(JSON.stringify(head.data)).not.to.include("second line");

    const list = await tool("list_directory").call({ path: dir }, ctx());
    expect(list.ok).to.equal(true);
    const text = JSON.stringify(list.data);
    expect(text).to.include("[FILE] hello.txt").and.include("[DIR] sub");
  });

  it("writes a file", async () => {
    const target = path.join(dir, "sub", "new.txt");
    const out = await tool("write_file").call({ path: target, content: "written" }, ctx());
    expect(out.ok, out.error).to.equal(true);
    expect(await readFile(target, "utf8")).to.equal("written");
  });

  it("a path outside the allowed folder is the tool's error, not a transient failure", async () => {
    const out = await tool("read_text_file").call({ path: "/etc/hostname" }, ctx());
    expect(out.ok).to.equal(false);
    expect(out.transient).to.equal(undefined);
    expect(out.error).to.match(/access denied|outside allowed/i);
  });

  it("validates arguments before a call", () => {
    expect(tool("read_text_file").validate({ path: 3 })).to.deep.equal({
      ok: false,
      issues: ["path: must be string"],
    });
    expect(tool("read_multiple_files").validate({ paths: [] })).to.deep.equal({
      ok: false,
      issues: ["paths: must NOT have fewer than 1 items"],
    });
  });
});
