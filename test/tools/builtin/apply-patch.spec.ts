import { chmod, lstat, mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import { applyPatchTool, type PatchedFile } from "../../../src/tools/builtin/apply-patch.js";
import { contextFor, makeWorkspace, runTool, type TempWorkspace } from "./helpers.js";

const GREETER = ["function greet(name) {", '  return "hi " + name;', "}", "", "greet(1);", ""].join(
  "\n",
);

describe("tools/apply_patch", () => {
  let ws: TempWorkspace;
  beforeEach(async () => {
    ws = await makeWorkspace();
    await mkdir(path.join(ws.root, "src"));
    await writeFile(path.join(ws.root, "src/greet.js"), GREETER);
    await writeFile(path.join(ws.root, "notes.txt"), "alpha\nbeta\ngamma\n");
  });
  afterEach(() => ws.cleanup());

  const apply = (patch: string) => runTool(applyPatchTool, { patch }, contextFor(ws.root));
  const read = (rel: string) => readFile(path.join(ws.root, rel), "utf8");
  const files = (data: unknown) => (data as { files: PatchedFile[] }).files;

  /** Every file of the workspace with its content, to prove nothing changed. */
  async function snapshot(dir = ws.root): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      const abs = path.join(entry.parentPath, entry.name);
      if (entry.isFile()) out[path.relative(ws.root, abs)] = await readFile(abs, "utf8");
    }
    return out;
  }

  describe("Codex format", () => {
    it("adds, updates, moves and deletes in one patch", async () => {
      await writeFile(path.join(ws.root, "old.txt"), "one\ntwo\n");
      const out = await apply(
        [
          "*** Begin Patch",
          "*** Add File: docs/new.md",
          "+# Title",
          "+",
          "+body",
          "*** Update File: src/greet.js",
          "@@ function greet(name) {",
          '-  return "hi " + name;',
          '+  return "hello " + name;',
          "*** Update File: old.txt",
          "*** Move to: moved/renamed.txt",
          "@@",
          " one",
          "-two",
          "+three",
          "*** Delete File: notes.txt",
          "*** End Patch",
        ].join("\n"),
      );
      expect(out.error).to.equal(undefined);
      expect(out).to.deep.equal({
        ok: true,
        data: {
          files: [
            { path: "docs/new.md", action: "add", added_lines: 3, removed_lines: 0 },
            { path: "src/greet.js", action: "update", added_lines: 1, removed_lines: 1 },
            {
              path: "moved/renamed.txt",
              action: "move",
              from: "old.txt",
              added_lines: 1,
              removed_lines: 1,
            },
            { path: "notes.txt", action: "delete", added_lines: 0, removed_lines: 3 },
          ],
        },
      });
      expect(await read("docs/new.md")).to.equal("# Title\n\nbody\n");
      expect(await read("src/greet.js")).to.equal(GREETER.replace('"hi "', '"hello "'));
      expect(await read("moved/renamed.txt")).to.equal("one\nthree\n");
      expect(await snapshot()).to.have.all.keys("docs/new.md", "src/greet.js", "moved/renamed.txt");
    });

    it("accepts a first hunk without @@, trailing-whitespace drift and *** End of File", async () => {
      await writeFile(path.join(ws.root, "ws.txt"), "keep  \nchange me\t\nend\nend\n");
      const out = await apply(
        [
          "*** Begin Patch",
          "*** Update File: ws.txt",
          " keep",
          "-change me",
          "+changed",
          "@@",
          "-end",
          "+last",
          "*** End of File",
          "*** End Patch",
          "",
        ].join("\n"),
      );
      expect(out.ok, out.error).to.equal(true);
      // The context line keeps its own spacing; *** End of File picked the last "end".
      expect(await read("ws.txt")).to.equal("keep  \nchanged\nend\nlast\n");
    });

    it("narrows down with several @@ lines, inserts after them, and tolerates blank padding", async () => {
      await writeFile(
        path.join(ws.root, "cls.py"),
        [
          "class A:",
          "    def run(self):",
          "        pass",
          "class B:",
          "    def run(self):",
          "        pass",
          "",
        ].join("\n"),
      );
      const out = await apply(
        [
          "*** Begin Patch",
          "*** Update File: cls.py",
          "@@ class B:",
          "@@     def run(self):",
          "-        pass",
          "+        return 2",
          "",
          "*** Update File: notes.txt",
          "@@ beta",
          "+after beta",
          "*** End Patch",
        ].join("\n"),
      );
      expect(out.ok, out.error).to.equal(true);
      expect(await read("cls.py")).to.equal(
        "class A:\n    def run(self):\n        pass\nclass B:\n    def run(self):\n        return 2\n",
      );
      expect(await read("notes.txt")).to.equal("alpha\nbeta\nafter beta\ngamma\n");
    });

    it("keeps CRLF line ends and a missing final newline", async () => {
      await writeFile(path.join(ws.root, "dos.txt"), "a\r\nb\r\nc\r\n");
      await writeFile(path.join(ws.root, "noeol.txt"), "x\ny\nz");
      const out = await apply(
        [
          "*** Begin Patch",
          "*** Update File: dos.txt",
          "@@",
          " a",
          "-b",
          "+B",
          "*** Update File: noeol.txt",
          "@@",
          "-x",
          "+X",
          "*** End Patch",
        ].join("\n"),
      );
      expect(out.ok, out.error).to.equal(true);
      expect(await read("dos.txt")).to.equal("a\r\nB\r\nc\r\n");
      expect(await read("noeol.txt")).to.equal("X\ny\nz");
    });

    it("keeps the mode of an updated file and leaves no temp file", async () => {
      const script = path.join(ws.root, "run.sh");
      await writeFile(script, "#!/bin/sh\necho old\n");
      await chmod(script, 0o750);
      const out = await apply(
        "*** Begin Patch\n*** Update File: run.sh\n@@\n-echo old\n+echo new\n*** End Patch",
      );
      expect(out.ok, out.error).to.equal(true);
      expect(await read("run.sh")).to.equal("#!/bin/sh\necho new\n");
      expect((await stat(script)).mode & 0o777).to.equal(0o750);
      expect((await readdir(ws.root)).sort()).to.deep.equal(["notes.txt", "run.sh", "src"]);
    });

    it("reports a syntax error with its patch line", async () => {
      const noEnd = await apply("*** Begin Patch\n*** Add File: x.txt\n+x\n");
      expect(noEnd.ok).to.equal(false);
      expect(noEnd.error).to.match(/^invalid patch: patch line \d+: the patch must end with/);
      const badLine = await apply(
        "*** Begin Patch\n*** Update File: notes.txt\n@@\n alpha\n?beta\n*** End Patch",
      );
      expect(badLine.error).to.match(/patch line 5: .*must start with " ", "-" or "\+"/);
      const notAPatch = await apply("please change alpha to beta");
      expect(notAPatch.error).to.match(/^invalid patch: not a patch/);
    });
  });

  describe("unified diff", () => {
    it("updates using the hinted line to pick among repeated context", async () => {
      await writeFile(path.join(ws.root, "rep.txt"), "x\nsame\nx\nsame\nx\n");
      const out = await apply(
        ["--- a/rep.txt", "+++ b/rep.txt", "@@ -3,3 +3,3 @@", " x", "-same", "+second", " x"].join(
          "\n",
        ),
      );
      expect(out.ok, out.error).to.equal(true);
      expect(await read("rep.txt")).to.equal("x\nsame\nx\nsecond\nx\n");
    });

    it("adds, deletes and renames with /dev/null and git headers, in a code fence", async () => {
      const out = await apply(
        [
          "```diff",
          "diff --git a/docs/added.txt b/docs/added.txt",
          "new file mode 100644",
          "--- /dev/null",
          "+++ b/docs/added.txt",
          "@@ -0,0 +1,2 @@",
          "+first",
          "+second",
          "\\ No newline at end of file",
          "diff --git a/notes.txt b/notes.txt",
          "deleted file mode 100644",
          "--- a/notes.txt",
          "+++ /dev/null",
          "@@ -1,3 +0,0 @@",
          "-alpha",
          "-beta",
          "-gamma",
          "diff --git a/src/greet.js b/lib/greet.js",
          "similarity index 80%",
          "rename from src/greet.js",
          "rename to lib/greet.js",
          "--- a/src/greet.js",
          "+++ b/lib/greet.js",
          "@@ -4,2 +4,3 @@ function greet(name) {",
          " ",
          " greet(1);",
          "+greet(2);",
          "```",
        ].join("\n"),
      );
      expect(out.ok, out.error).to.equal(true);
      expect(files(out.data).map((f) => [f.action, f.path])).to.deep.equal([
        ["add", "docs/added.txt"],
        ["delete", "notes.txt"],
        ["move", "lib/greet.js"],
      ]);
      expect(await read("docs/added.txt")).to.equal("first\nsecond");
      expect(await read("lib/greet.js")).to.equal(`${GREETER}greet(2);\n`);
      expect(await snapshot()).to.have.all.keys("docs/added.txt", "lib/greet.js");
    });

    it("inserts after the hinted line when a hunk removes nothing", async () => {
      const out = await apply("--- notes.txt\n+++ notes.txt\n@@ -1,0 +2 @@\n+inserted\n");
      expect(out.ok, out.error).to.equal(true);
      expect(await read("notes.txt")).to.equal("alpha\ninserted\nbeta\ngamma\n");
    });
  });

  describe("all or nothing", () => {
    it("changes no file when a later hunk does not apply, and says which", async () => {
      const before = await snapshot();
      const out = await apply(
        [
          "*** Begin Patch",
          "*** Add File: created.txt",
          "+new",
          "*** Update File: notes.txt",
          "@@",
          "-alpha",
          "+ALPHA",
          "*** Update File: src/greet.js",
          "@@",
          " function greet(name) {",
          "-  return 'bye';",
          "+  return 'hi';",
          "*** End Patch",
        ].join("\n"),
      );
      expect(out.ok).to.equal(false);
      expect(out.error).to.equal(
        '"src/greet.js": hunk 1 of 1 (@@) did not apply: these lines were not found:\n' +
          "    function greet(name) {\n      return 'bye';; nothing was changed",
      );
      expect(await snapshot()).to.deep.equal(before);
    });

    it("names the unified hunk that failed and shortens long expected context", async () => {
      const before = await snapshot();
      const longLine = "y".repeat(500);
      const out = await apply(
        [
          "--- a/notes.txt",
          "+++ b/notes.txt",
          "@@ -1,1 +1,1 @@",
          "-alpha",
          "+ALPHA",
          "@@ -3,10 +3,1 @@",
          ...Array.from({ length: 10 }, (_, i) => `-${i === 0 ? longLine : `missing ${i}`}`),
          "+z",
        ].join("\n"),
      );
      expect(out.ok).to.equal(false);
      const error = out.error as string;
      expect(error).to.match(/^"notes.txt": hunk 2 of 2 \(@@ -3,10 \+3,1 @@\) did not apply/);
      expect(error)
        .to.include(`${"y".repeat(120)}…\n`)
        .and.not.include("y".repeat(121));
      expect(error).to.include("… (2 more lines)");
      expect(await snapshot()).to.deep.equal(before);
    });

    it("refuses to add an existing file, or to update or delete a missing one", async () => {
      const before = await snapshot();
      const add = await apply("*** Begin Patch\n*** Add File: notes.txt\n+x\n*** End Patch");
      expect(add.error).to.equal(
        'cannot add "notes.txt": it already exists (update or delete it instead); nothing was changed',
      );
      const del = await apply("*** Begin Patch\n*** Delete File: nope.txt\n*** End Patch");
      expect(del.error).to.equal(
        'cannot delete "nope.txt": it does not exist; nothing was changed',
      );
      const move = await apply(
        "*** Begin Patch\n*** Update File: notes.txt\n*** Move to: src/greet.js\n*** End Patch",
      );
      expect(move.error).to.match(/cannot move "notes.txt" to "src\/greet.js": it exists/);
      expect(await snapshot()).to.deep.equal(before);
    });
  });

  describe("confinement and content", () => {
    it("refuses .. escapes, absolute paths outside and symlinks leading out", async () => {
      await writeFile(path.join(ws.dataDir, "outside.txt"), "secret\n");
      await symlink(ws.dataDir, path.join(ws.root, "up"));
      const before = await snapshot();
      const dotDot = await apply(
        "*** Begin Patch\n*** Add File: ok.txt\n+x\n*** Add File: ../evil.txt\n+x\n*** End Patch",
      );
      expect(dotDot.error).to.equal(
        'path "../evil.txt" is outside the workspace; nothing was changed',
      );
      const absolute = await apply(
        `--- ${path.join(ws.dataDir, "outside.txt")}\n+++ ${path.join(ws.dataDir, "outside.txt")}\n@@ -1 +1 @@\n-secret\n+owned\n`,
      );
      expect(absolute.error).to.match(/is outside the workspace; nothing was changed$/);
      const viaLink = await apply(
        "*** Begin Patch\n*** Update File: up/outside.txt\n@@\n-secret\n+owned\n*** End Patch",
      );
      expect(viaLink.error).to.match(/resolves outside the workspace through a symlink/);
      const moveOut = await apply(
        "*** Begin Patch\n*** Update File: notes.txt\n*** Move to: ../moved.txt\n*** End Patch",
      );
      expect(moveOut.error).to.match(/"\.\.\/moved\.txt" is outside the workspace/);
      expect(await readFile(path.join(ws.dataDir, "outside.txt"), "utf8")).to.equal("secret\n");
      expect(await snapshot()).to.deep.equal(before);
      expect((await readdir(ws.dataDir)).sort()).to.deep.equal(["outside.txt", "workspaces"]);
    });

    it("edits through a symlink that stays inside, keeping the link", async () => {
      await symlink("notes.txt", path.join(ws.root, "alias.txt"));
      const out = await apply("--- a/alias.txt\n+++ b/alias.txt\n@@ -2 +2 @@\n-beta\n+BETA\n");
      expect(out.ok, out.error).to.equal(true);
      expect(await read("notes.txt")).to.equal("alpha\nBETA\ngamma\n");
      expect((await lstat(path.join(ws.root, "alias.txt"))).isSymbolicLink()).to.equal(true);
    });

    it("refuses binary files and NUL bytes in the patch", async () => {
      await writeFile(path.join(ws.root, "blob.bin"), Buffer.from([1, 0, 2, 10]));
      const binary = await apply("*** Begin Patch\n*** Delete File: blob.bin\n*** End Patch");
      expect(binary.error).to.equal('"blob.bin" is a binary file; nothing was changed');
      const nul = await apply("*** Begin Patch\n*** Add File: a.txt\n+a\0b\n*** End Patch");
      expect(nul.error).to.equal(
        "the patch contains a NUL byte; apply_patch only edits text files",
      );
      expect(await snapshot()).to.not.have.property("a.txt");
    });

    it("refuses a folder and validates the patch size", async () => {
      const folder = await apply("*** Begin Patch\n*** Delete File: src\n*** End Patch");
      expect(folder.error).to.equal('"src" is a directory; nothing was changed');
      expect(applyPatchTool.input.safeParse({ patch: "" }).success).to.equal(false);
      expect(applyPatchTool.input.safeParse({ patch: "x".repeat(1_000_001) }).success).to.equal(
        false,
      );
    });

    it("does nothing when the signal is already aborted", async () => {
      const controller = new AbortController();
      controller.abort();
      const out = await runTool(
        applyPatchTool,
        { patch: "*** Begin Patch\n*** Add File: a.txt\n+a\n*** End Patch" },
        contextFor(ws.root, { signal: controller.signal }),
      );
      expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
      expect(await snapshot()).to.not.have.property("a.txt");
    });
  });
});
