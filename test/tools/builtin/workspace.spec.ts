import { mkdir, realpath, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import {
  ensureWorkspace,
  resolveInWorkspace,
  toWorkspacePath,
  WorkspaceError,
} from "../../../src/tools/builtin/workspace.js";
import { makeWorkspace, type TempWorkspace } from "./helpers.js";

async function expectRefused(root: string, requested: string, message: RegExp): Promise<void> {
  const err = await resolveInWorkspace(root, requested).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${JSON.stringify(requested)} to be refused`).to.be.instanceOf(
    WorkspaceError,
  );
  expect((err as Error).message).to.match(message);
}

describe("tools/workspace", () => {
  let ws: TempWorkspace;
  beforeEach(async () => {
    ws = await makeWorkspace();
  });
  afterEach(() => ws.cleanup());

  describe("ensureWorkspace", () => {
    it("creates <dataDir>/workspaces/<userId> and returns its real path", async () => {
      const root = await ensureWorkspace(ws.dataDir, "alice.B-2");
      expect(root).to.equal(await realpath(path.join(ws.dataDir, "workspaces", "alice.B-2")));
      expect((await stat(root)).isDirectory()).to.equal(true);
      expect(await ensureWorkspace(ws.dataDir, "alice.B-2")).to.equal(root);
    });

    for (const bad of ["", ".", "..", "a/b", "../evil", ".hidden", "a\0b", "x".repeat(129)]) {
      it(`refuses user id ${JSON.stringify(bad.length > 20 ? `${bad.slice(0, 8)}…(${bad.length})` : bad)}`, async () => {
        const err = await ensureWorkspace(ws.dataDir, bad).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).to.be.instanceOf(WorkspaceError);
      });
    }
  });

  describe("resolveInWorkspace", () => {
    it("resolves relative paths, including ones that do not exist yet", async () => {
      expect(await resolveInWorkspace(ws.root, "a/b.txt")).to.equal(path.join(ws.root, "a/b.txt"));
      expect(await resolveInWorkspace(ws.root, ".")).to.equal(ws.root);
      expect(await resolveInWorkspace(ws.root, "a/../c")).to.equal(path.join(ws.root, "c"));
      expect(await resolveInWorkspace(ws.root, "..foo")).to.equal(path.join(ws.root, "..foo"));
    });

    it("accepts an absolute path inside the root", async () => {
      const inside = path.join(ws.root, "x", "y");
      expect(await resolveInWorkspace(ws.root, inside)).to.equal(inside);
    });

    it('refuses ".." escapes with a clear message', async () => {
      await expectRefused(ws.root, "../x", /^path "\.\.\/x" is outside the workspace$/);
      await expectRefused(ws.root, "a/../../x", /outside the workspace/);
      await expectRefused(ws.root, "..", /outside the workspace/);
    });

    it("refuses an absolute path outside the root, including a sibling sharing its prefix", async () => {
      await expectRefused(ws.root, "/etc/passwd", /outside the workspace/);
      await expectRefused(ws.root, `${ws.root}-other/x`, /outside the workspace/);
      await expectRefused(ws.root, ws.dataDir, /outside the workspace/);
    });

    it("refuses a symlink that points outside, and paths through it", async () => {
      const outside = path.join(ws.dataDir, "outside");
      await mkdir(outside);
      await writeFile(path.join(outside, "secret.txt"), "s");
      await symlink(outside, path.join(ws.root, "out"));
      await expectRefused(ws.root, "out", /resolves outside the workspace through a symlink/);
      await expectRefused(ws.root, "out/secret.txt", /through a symlink/);
      await expectRefused(ws.root, "out/new-file.txt", /through a symlink/);
    });

    it("refuses a dangling symlink whose target would be created outside", async () => {
      await symlink(path.join(ws.dataDir, "not-yet"), path.join(ws.root, "dangling"));
      await expectRefused(ws.root, "dangling", /through a symlink/);
      // Relative target, resolved from the link's real folder.
      await symlink("../../escaped.txt", path.join(ws.root, "dangling-rel"));
      await expectRefused(ws.root, "dangling-rel", /through a symlink/);
    });

    it("applies '..' in a link target to the physical path, as the kernel does", async () => {
      // `deep` → outside/a/b, so `deep/../x` is outside/a/x, although it reads as root/x.
      const outsideDeep = path.join(ws.dataDir, "outside", "a", "b");
      await mkdir(outsideDeep, { recursive: true });
      await symlink(outsideDeep, path.join(ws.root, "deep"));
      await symlink("deep/../x", path.join(ws.root, "tricky"));
      await expectRefused(ws.root, "tricky", /through a symlink/);
    });

    it("refuses symlink loops with a clear error", async () => {
      await symlink("loop-b", path.join(ws.root, "loop-a"));
      await symlink("loop-a", path.join(ws.root, "loop-b"));
      await expectRefused(ws.root, "loop-a/x", /too many levels of symbolic links/);
    });

    it("accepts symlinks that stay inside the workspace", async () => {
      await mkdir(path.join(ws.root, "real", "sub"), { recursive: true });
      await symlink(path.join(ws.root, "real"), path.join(ws.root, "alias"));
      await symlink("real/sub", path.join(ws.root, "rel-alias"));
      expect(await resolveInWorkspace(ws.root, "alias/sub/f.txt")).to.equal(
        path.join(ws.root, "alias/sub/f.txt"),
      );
      expect(await resolveInWorkspace(ws.root, "rel-alias")).to.equal(
        path.join(ws.root, "rel-alias"),
      );
    });

    it("accepts a root given through a symlink, and absolute paths under either spelling", async () => {
      const linkedRoot = path.join(ws.dataDir, "linked-root");
      await symlink(ws.root, linkedRoot);
      expect(await resolveInWorkspace(linkedRoot, "f.txt")).to.equal(
        path.join(linkedRoot, "f.txt"),
      );
      expect(await resolveInWorkspace(linkedRoot, path.join(ws.root, "f.txt"))).to.equal(
        path.join(linkedRoot, "f.txt"),
      );
    });

    it("refuses a NUL byte", async () => {
      await expectRefused(ws.root, "a\0b", /NUL/);
    });
  });

  it("toWorkspacePath gives '/'-separated paths relative to the root", () => {
    expect(toWorkspacePath(ws.root, ws.root)).to.equal(".");
    expect(toWorkspacePath(ws.root, path.join(ws.root, "a", "b.txt"))).to.equal("a/b.txt");
  });
});
