import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import {
  globToRegExp,
  MAX_FILES_SEARCHED,
  searchContentTool,
  searchInWorker,
} from "../../../src/tools/builtin/search-content.js";
import { contextFor, makeWorkspace, runTool, type TempWorkspace } from "./helpers.js";

interface SearchData {
  matches: { path: string; line: number; text: string; before?: string[]; after?: string[] }[];
  files_searched: number;
  truncated: boolean;
}

describe("tools/search_content", () => {
  let ws: TempWorkspace;
  const put = async (rel: string, content: string | Buffer) => {
    await mkdir(path.dirname(path.join(ws.root, rel)), { recursive: true });
    await writeFile(path.join(ws.root, rel), content);
  };
  beforeEach(async () => {
    ws = await makeWorkspace();
    await put("src/app.ts", "import x from 'y';\nconst TODO = 1;\n// todo: later\nexport {};\n");
    await put("src/util/strings.ts", "export const a = 'todo';\n");
    await put("docs/guide.md", "# Guide\nTODO write it\n");
    await put("README.md", "nothing here\n");
  });
  afterEach(() => ws.cleanup());

  const search = async (args: unknown) => {
    const out = await runTool(searchContentTool, args, contextFor(ws.root));
    return { out, data: out.data as SearchData };
  };
  const where = (data: SearchData) => data.matches.map((m) => `${m.path}:${m.line}`);

  it("finds a literal, case-insensitively by default, in tree order", async () => {
    const { out, data } = await search({ query: "todo" });
    expect(out.ok).to.equal(true);
    expect(where(data)).to.deep.equal([
      "docs/guide.md:2",
      "src/app.ts:2",
      "src/app.ts:3",
      "src/util/strings.ts:1",
    ]);
    expect(data.matches[0]).to.deep.equal({
      path: "docs/guide.md",
      line: 2,
      text: "TODO write it",
    });
    expect(data).to.include({ files_searched: 4, truncated: false });
    expect(out.truncated).to.equal(false);
  });

  it("honours case_sensitive, regex, path and a literal with regex characters", async () => {
    expect(where((await search({ query: "TODO", case_sensitive: true })).data)).to.deep.equal([
      "docs/guide.md:2",
      "src/app.ts:2",
    ]);
    const regex = await search({ query: "^(import|export) ", regex: true, path: "src" });
    expect(where(regex.data)).to.deep.equal([
      "src/app.ts:1",
      "src/app.ts:4",
      "src/util/strings.ts:1",
    ]);
    expect(regex.data.files_searched).to.equal(2);
    expect(where((await search({ query: "{};" })).data)).to.deep.equal(["src/app.ts:4"]);
    const oneFile = await search({ query: "todo", path: "src/app.ts" });
    expect(where(oneFile.data)).to.deep.equal(["src/app.ts:2", "src/app.ts:3"]);
  });

  it("filters files by name glob or by path glob", async () => {
    expect(where((await search({ query: "todo", file_pattern: "*.md" })).data)).to.deep.equal([
      "docs/guide.md:2",
    ]);
    const byPath = await search({ query: "o", file_pattern: "src/**/*.{ts,js}" });
    expect([...new Set(byPath.data.matches.map((m) => m.path))]).to.deep.equal([
      "src/app.ts",
      "src/util/strings.ts",
    ]);
    expect(globToRegExp("**/*.md").test("README.md")).to.equal(true);
    expect(globToRegExp("**/*.md").test("a/b/c.md")).to.equal(true);
    expect(globToRegExp("*.md").test("a/c.md")).to.equal(false);
    expect(globToRegExp("file?.[ch]").test("file1.c")).to.equal(true);
    expect(globToRegExp("[!a]*.txt").test("a.txt")).to.equal(false);
    expect(globToRegExp("a+b(1).txt").test("a+b(1).txt")).to.equal(true);
  });

  it("returns context lines and cuts long lines around the match", async () => {
    const { data } = await search({ query: "later", context_lines: 2 });
    expect(data.matches).to.deep.equal([
      {
        path: "src/app.ts",
        line: 3,
        text: "// todo: later",
        before: ["import x from 'y';", "const TODO = 1;"],
        after: ["export {};"],
      },
    ]);
    await put("long.txt", `${"a".repeat(1000)}NEEDLE${"b".repeat(1000)}\n`);
    const long = (await search({ query: "needle" })).data.matches[0]?.text ?? "";
    expect(long).to.have.length(302);
    expect(long).to.match(/^…a{100}NEEDLEb+…$/);
  });

  it("skips .git, node_modules, the root .tmp, symlinks, binary and large files", async () => {
    await put(".git/config", "todo\n");
    await put("node_modules/pkg/index.js", "todo\n");
    await put("lib/node_modules/x.js", "todo\n");
    await put(".tmp/scratch.txt", "todo\n");
    await put("bin/blob.dat", Buffer.from("todo\0todo\n"));
    await put("big.txt", `todo\n${"x".repeat(1024 * 1024)}\n`);
    await symlink(path.join(ws.root, "src"), path.join(ws.root, "linked"));
    await symlink(ws.dataDir, path.join(ws.root, "up"));
    const { data } = await search({ query: "todo" });
    expect(where(data)).to.deep.equal([
      "docs/guide.md:2",
      "src/app.ts:2",
      "src/app.ts:3",
      "src/util/strings.ts:1",
    ]);
    // Named explicitly, the root's .tmp is searched.
    expect(where((await search({ query: "todo", path: ".tmp" })).data)).to.deep.equal([
      ".tmp/scratch.txt:1",
    ]);
  });

  it("stops at max_results and says so", async () => {
    await put("many.txt", "hit\n".repeat(50));
    const { out, data } = await search({ query: "hit", max_results: 10 });
    expect(data.matches).to.have.length(10);
    expect(data.truncated).to.equal(true);
    expect(out.truncated).to.equal(true);
    const exact = await search({ query: "hit", max_results: 50 });
    expect(exact.data.truncated).to.equal(false);
  });

  it("stops after searching MAX_FILES_SEARCHED files", async () => {
    await mkdir(path.join(ws.root, "many"));
    const names = Array.from({ length: MAX_FILES_SEARCHED + 1 }, (_, i) => `f${i}.txt`);
    // In batches, to stay well under the open-files limit.
    for (let i = 0; i < names.length; i += 200) {
      await Promise.all(
        names.slice(i, i + 200).map((n) => writeFile(path.join(ws.root, "many", n), "x\n")),
      );
    }
    const { data } = await search({ query: "nothing matches this", path: "many" });
    expect(data).to.deep.equal({
      matches: [],
      files_searched: MAX_FILES_SEARCHED,
      truncated: true,
    });
  });

  it("fails on an invalid regex, a missing path and a path outside", async () => {
    const bad = await search({ query: "(unclosed", regex: true });
    expect(bad.out.ok).to.equal(false);
    expect(bad.out.error).to.match(/^invalid regex: .*Unterminated group/);
    expect((await search({ query: "x", path: "nope" })).out.error).to.equal(
      '"nope" does not exist',
    );
    expect((await search({ query: "x", path: "../.." })).out.error).to.equal(
      'path "../.." is outside the workspace',
    );
  });

  it("stops when the signal is aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const out = await runTool(
      searchContentTool,
      { query: "todo" },
      contextFor(ws.root, { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
  });

  it("fails on an invalid file_pattern", async () => {
    const { out } = await search({ query: "todo", file_pattern: "[z-a]" });
    expect(out.ok).to.equal(false);
    expect(out.error).to.match(/^invalid file_pattern "\[z-a\]": .*Range out of order/);
  });

  describe("with a catastrophically backtracking regex", () => {
    const EVIL = "(a+)+$";
    beforeEach(() => put("evil.txt", `${"a".repeat(5000)}b\n`.repeat(3)));

    /** Runs `body` while a 10 ms interval counts its ticks; the event loop must keep turning. */
    const ticking = async <T>(body: () => Promise<T>) => {
      let ticks = 0;
      const interval = setInterval(() => ticks++, 10);
      const started = Date.now();
      try {
        const result = await body();
        return { result, ticks, elapsed: Date.now() - started };
      } finally {
        clearInterval(interval);
      }
    };

    it("returns promptly when the signal aborts, without blocking the event loop", async () => {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 200);
      const { result, ticks, elapsed } = await ticking(() =>
        runTool(
          searchContentTool,
          { query: EVIL, regex: true, path: "evil.txt" },
          contextFor(ws.root, { signal: controller.signal }),
        ),
      );
      expect(result).to.deep.equal({ ok: false, error: "aborted", data: null });
      expect(elapsed).to.be.below(3000);
      expect(ticks).to.be.at.least(10);
    });

    it("gives up at the search deadline", async () => {
      const { result, ticks, elapsed } = await ticking(() =>
        searchInWorker(
          {
            root: ws.root,
            start: ws.root,
            startIsDir: true,
            query: new RegExp(EVIL, "u"),
            filterByPath: false,
            maxResults: 100,
            contextLines: 0,
          },
          new AbortController().signal,
          1000,
        ),
      );
      expect(result).to.deep.equal({ type: "deadline" });
      expect(elapsed).to.be.within(1000, 4000);
      expect(ticks).to.be.at.least(50);
    });

    it("still finds what a harmless regex matches in the same file", async () => {
      const { out, data } = await search({ query: "a+b$", regex: true, path: "evil.txt" });
      expect(out.ok).to.equal(true);
      expect(where(data)).to.deep.equal(["evil.txt:1", "evil.txt:2", "evil.txt:3"]);
    });
  });

  it("validates its input bounds", () => {
    const parse = (args: unknown) => searchContentTool.input.safeParse(args).success;
    expect(parse({ query: "" })).to.equal(false);
    expect(parse({ query: "x", max_results: 1001 })).to.equal(false);
    expect(parse({ query: "x", context_lines: 6 })).to.equal(false);
    expect(parse({ query: "x", max_results: 1000, context_lines: 5 })).to.equal(true);
  });
});
