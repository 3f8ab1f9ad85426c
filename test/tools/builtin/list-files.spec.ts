import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import { LIST_FILES_MAX_ENTRIES, listFilesTool } from "../../../src/tools/builtin/list-files.js";
import { contextFor, makeWorkspace, runTool, type TempWorkspace } from "./helpers.js";

interface Listing {
  path: string;
  entries: { path: string; type: string; size_bytes: number }[];
  truncated: boolean;
}

describe("tools/list_files", () => {
  let ws: TempWorkspace;
  beforeEach(async () => {
    ws = await makeWorkspace();
    await mkdir(path.join(ws.root, "src", "deep", "deeper"), { recursive: true });
    await writeFile(path.join(ws.root, "README.md"), "hello");
    await writeFile(path.join(ws.root, "src", "main.ts"), "x".repeat(42));
    await writeFile(path.join(ws.root, "src", "deep", "d.txt"), "d");
    await writeFile(path.join(ws.root, "src", "deep", "deeper", "z.txt"), "z");
    await writeFile(path.join(ws.root, "src-b.txt"), "");
  });
  afterEach(() => ws.cleanup());

  it("lists two levels by default, in tree order, with types and sizes", async () => {
    const out = await runTool(listFilesTool, {}, contextFor(ws.root));
    expect(out.ok).to.equal(true);
    expect(out.data).to.deep.equal({
      path: ".",
      entries: [
        { path: "README.md", type: "file", size_bytes: 5 },
        { path: "src", type: "dir", size_bytes: 0 },
        { path: "src/deep", type: "dir", size_bytes: 0 },
        { path: "src/main.ts", type: "file", size_bytes: 42 },
        { path: "src-b.txt", type: "file", size_bytes: 0 },
      ],
      truncated: false,
    });
    expect(out.truncated).to.equal(false);
  });

  it("honours max_depth and a sub-folder path, with entry paths relative to the root", async () => {
    const shallow = (await runTool(listFilesTool, { max_depth: 1 }, contextFor(ws.root)))
      .data as Listing;
    expect(shallow.entries.map((e) => e.path)).to.deep.equal(["README.md", "src", "src-b.txt"]);

    const sub = (await runTool(listFilesTool, { path: "src/", max_depth: 8 }, contextFor(ws.root)))
      .data as Listing;
    expect(sub.path).to.equal("src");
    expect(sub.entries.map((e) => e.path)).to.deep.equal([
      "src/deep",
      "src/deep/d.txt",
      "src/deep/deeper",
      "src/deep/deeper/z.txt",
      "src/main.ts",
    ]);
  });

  it("lists symlinks as symlinks without following them", async () => {
    await symlink(path.join(ws.root, "src"), path.join(ws.root, "link-to-src"));
    await symlink("/", path.join(ws.root, "link-to-host-root"));
    const out = await runTool(listFilesTool, { max_depth: 3 }, contextFor(ws.root));
    const entries = (out.data as Listing).entries;
    expect(entries.find((e) => e.path === "link-to-src")?.type).to.equal("symlink");
    expect(entries.find((e) => e.path === "link-to-host-root")?.type).to.equal("symlink");
    expect(entries.filter((e) => e.path.startsWith("link-to-src/"))).to.deep.equal([]);
    expect(entries.filter((e) => e.path.startsWith("link-to-host-root/"))).to.deep.equal([]);
  });

  it(`stops at ${LIST_FILES_MAX_ENTRIES} entries with truncated: true, keeping shallow ones`, async () => {
    const many = path.join(ws.root, "many");
    await mkdir(many);
    await Promise.all(
      Array.from({ length: 600 }, (_, i) =>
        writeFile(path.join(many, `f${String(i).padStart(3, "0")}.txt`), ""),
      ),
    );
    const out = await runTool(listFilesTool, { max_depth: 8 }, contextFor(ws.root));
    expect(out.ok).to.equal(true);
    expect(out.truncated).to.equal(true);
    const listing = out.data as Listing;
    expect(listing.truncated).to.equal(true);
    expect(listing.entries).to.have.length(LIST_FILES_MAX_ENTRIES);
    // Breadth-first: every top-level entry made it although "many" alone has 600 children.
    for (const top of ["README.md", "many", "src", "src-b.txt"]) {
      expect(listing.entries.map((e) => e.path)).to.include(top);
    }
    const paths = listing.entries.map((e) => e.path);
    expect(paths.indexOf("many/f000.txt")).to.equal(paths.indexOf("many") + 1);
  });

  it("reports exactly 500 entries as not truncated", async () => {
    const exact = path.join(ws.root, "exact");
    await mkdir(exact);
    await Promise.all(
      Array.from({ length: LIST_FILES_MAX_ENTRIES }, (_, i) =>
        writeFile(path.join(exact, `f${i}`), ""),
      ),
    );
    const out = await runTool(listFilesTool, { path: "exact" }, contextFor(ws.root));
    expect((out.data as Listing).entries).to.have.length(LIST_FILES_MAX_ENTRIES);
    expect(out.truncated).to.equal(false);
  });

  it("fails without throwing on a missing folder, a file, and an escape", async () => {
    const missing = await runTool(listFilesTool, { path: "nope" }, contextFor(ws.root));
    expect(missing).to.deep.equal({ ok: false, error: '"nope" does not exist', data: null });

    const file = await runTool(listFilesTool, { path: "README.md" }, contextFor(ws.root));
    expect(file.ok).to.equal(false);
    expect(file.error).to.match(/not a directory/);

    const escaped = await runTool(listFilesTool, { path: "../.." }, contextFor(ws.root));
    expect(escaped).to.deep.equal({
      ok: false,
      error: 'path "../.." is outside the workspace',
      data: null,
    });
  });

  it("refuses to start when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const out = await runTool(
      listFilesTool,
      {},
      contextFor(ws.root, { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
  });

  it("rejects max_depth outside 1..8 at validation", () => {
    expect(listFilesTool.input.safeParse({ max_depth: 0 }).success).to.equal(false);
    expect(listFilesTool.input.safeParse({ max_depth: 9 }).success).to.equal(false);
    expect(listFilesTool.input.safeParse({ max_depth: 1.5 }).success).to.equal(false);
  });
});
