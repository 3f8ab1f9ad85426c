import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import { writeFileTool } from "../../../src/tools/builtin/write-file.js";
import { contextFor, makeWorkspace, runTool, type TempWorkspace } from "./helpers.js";

describe("tools/write_file", () => {
  let ws: TempWorkspace;
  beforeEach(async () => {
    ws = await makeWorkspace();
  });
  afterEach(() => ws.cleanup());

  const write = (args: unknown) => runTool(writeFileTool, args, contextFor(ws.root));

  it("creates a file and its missing parent folders, counting UTF-8 bytes", async () => {
    const out = await write({ path: "a/b/c.txt", content: "héllo\n" });
    expect(out).to.deep.equal({ ok: true, data: { path: "a/b/c.txt", bytes_written: 7 } });
    expect(await readFile(path.join(ws.root, "a/b/c.txt"), "utf8")).to.equal("héllo\n");
  });

  it("replaces atomically: new content, same mode, no temp file left", async () => {
    const file = path.join(ws.root, "run.sh");
    await writeFile(file, "old content that is longer than the new one\n");
    await chmod(file, 0o750);
    const before = await stat(file);
    const out = await write({ path: "run.sh", content: "new\n" });
    expect(out.ok).to.equal(true);
    expect(await readFile(file, "utf8")).to.equal("new\n");
    const after = await stat(file);
    expect(after.mode & 0o777).to.equal(0o750);
    // A rename installs a new inode; an in-place rewrite would have kept the old one.
    expect(after.ino).to.not.equal(before.ino);
    expect(await readdir(ws.root)).to.deep.equal(["run.sh"]);
  });

  it("appends without replacing", async () => {
    await write({ path: "log.txt", content: "one\n" });
    const out = await write({ path: "log.txt", content: "two\n", append: true });
    expect(out).to.deep.equal({ ok: true, data: { path: "log.txt", bytes_written: 4 } });
    expect(await readFile(path.join(ws.root, "log.txt"), "utf8")).to.equal("one\ntwo\n");
    await write({ path: "new/appended.txt", content: "x", append: true });
    expect(await readFile(path.join(ws.root, "new/appended.txt"), "utf8")).to.equal("x");
  });

  it("writes through a symlink inside the workspace instead of replacing the link", async () => {
    await writeFile(path.join(ws.root, "target.txt"), "old");
    await symlink("target.txt", path.join(ws.root, "alias.txt"));
    const out = await write({ path: "alias.txt", content: "new" });
    expect(out.data).to.deep.equal({ path: "alias.txt", bytes_written: 3 });
    expect(await readFile(path.join(ws.root, "target.txt"), "utf8")).to.equal("new");
    expect((await lstat(path.join(ws.root, "alias.txt"))).isSymbolicLink()).to.equal(true);
  });

  it("refuses a directory, a file used as a folder, and paths outside", async () => {
    await mkdir(path.join(ws.root, "dir"));
    expect(await write({ path: "dir", content: "x" })).to.deep.equal({
      ok: false,
      error: '"dir" is a directory',
      data: null,
    });

    await writeFile(path.join(ws.root, "plain"), "");
    for (const p of ["plain/x.txt", "plain/sub/x.txt"]) {
      expect(await write({ path: p, content: "x" })).to.deep.equal({
        ok: false,
        error: `a parent folder of "${p}" is not a directory`,
        data: null,
      });
    }

    const escaped = await write({ path: "../escape.txt", content: "x" });
    expect(escaped.ok).to.equal(false);
    expect(escaped.error).to.equal('path "../escape.txt" is outside the workspace');
    await symlink(ws.dataDir, path.join(ws.root, "up"));
    const viaLink = await write({ path: "up/escape.txt", content: "x" });
    expect(viaLink.ok).to.equal(false);
    expect(viaLink.error).to.match(/through a symlink/);
    await symlink(path.join(ws.dataDir, "dangling.txt"), path.join(ws.root, "dangling"));
    const viaDangling = await write({ path: "dangling", content: "x" });
    expect(viaDangling.ok).to.equal(false);
    expect(await readdir(ws.dataDir)).to.deep.equal(["workspaces"]);
  });

  it("refuses to start when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const out = await runTool(
      writeFileTool,
      { path: "f.txt", content: "x" },
      contextFor(ws.root, { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
    expect(await readdir(ws.root)).to.deep.equal([]);
  });
});
