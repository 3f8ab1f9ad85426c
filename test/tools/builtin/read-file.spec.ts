import { execFileSync } from "node:child_process";
import { mkdir, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { expect } from "chai";
import { readFileTool } from "../../../src/tools/builtin/read-file.js";
import { contextFor, makeWorkspace, runTool, type TempWorkspace } from "./helpers.js";

interface ReadData {
  path: string;
  content: string;
  start_line: number;
  end_line: number;
  total_lines: number;
  truncated: boolean;
}

const FIVE_LINES = "one\ntwo\nthree\nfour\nfive\n";

describe("tools/read_file", () => {
  let ws: TempWorkspace;
  beforeEach(async () => {
    ws = await makeWorkspace();
    await mkdir(path.join(ws.root, "docs"));
    await writeFile(path.join(ws.root, "docs", "five.txt"), FIVE_LINES);
  });
  afterEach(() => ws.cleanup());

  const read = async (args: unknown, maxBytes?: number) =>
    runTool(
      readFileTool,
      args,
      contextFor(ws.root, maxBytes === undefined ? {} : { limits: { readFileMaxBytes: maxBytes } }),
    );

  it("reads a whole file", async () => {
    const out = await read({ path: "docs/five.txt" });
    expect(out).to.deep.equal({
      ok: true,
      data: {
        path: "docs/five.txt",
        content: FIVE_LINES,
        start_line: 1,
        end_line: 5,
        total_lines: 5,
        truncated: false,
      },
      truncated: false,
    });
  });

  it("reads a line range, clamping end_line to the file", async () => {
    const mid = (await read({ path: "docs/five.txt", start_line: 2, end_line: 3 }))
      .data as ReadData;
    expect(mid).to.include({ content: "two\nthree\n", start_line: 2, end_line: 3, total_lines: 5 });

    const tail = (await read({ path: "docs/five.txt", start_line: 4, end_line: 99 }))
      .data as ReadData;
    expect(tail).to.include({ content: "four\nfive\n", start_line: 4, end_line: 5 });

    const from = (await read({ path: "docs/five.txt", start_line: 5 })).data as ReadData;
    expect(from).to.include({ content: "five\n", start_line: 5, end_line: 5 });
  });

  it("counts a last line without a newline, and reads an empty file", async () => {
    await writeFile(path.join(ws.root, "no-eol.txt"), "a\nb");
    const noEol = (await read({ path: "no-eol.txt", start_line: 2 })).data as ReadData;
    expect(noEol).to.include({ content: "b", total_lines: 2, end_line: 2 });

    await writeFile(path.join(ws.root, "empty.txt"), "");
    const empty = await read({ path: "empty.txt" });
    expect(empty.ok).to.equal(true);
    expect(empty.data).to.include({ content: "", start_line: 1, end_line: 0, total_lines: 0 });
  });

  it("fails when start_line is past the end", async () => {
    const out = await read({ path: "docs/five.txt", start_line: 7 });
    expect(out).to.deep.equal({
      ok: false,
      error: 'start_line 7 is past the end of "docs/five.txt" (5 lines)',
      data: null,
    });
  });

  it("rejects end_line < start_line at validation", () => {
    const parsed = readFileTool.input.safeParse({ path: "a", start_line: 3, end_line: 2 });
    expect(parsed.success).to.equal(false);
    expect(readFileTool.input.safeParse({ path: "a", start_line: 0 }).success).to.equal(false);
    expect(
      readFileTool.input.safeParse({ path: "a", start_line: 2, end_line: 2 }).success,
    ).to.equal(true);
  });

  it("caps the content at readFileMaxBytes on a line boundary and says so", async () => {
    const lines = Array.from({ length: 100 }, (_, i) => `line ${String(i + 1).padStart(3, "0")}`);
    await writeFile(path.join(ws.root, "big.txt"), `${lines.join("\n")}\n`); // 9 bytes per line
    const out = await read({ path: "big.txt", start_line: 11 }, 50);
    expect(out.ok).to.equal(true);
    expect(out.truncated).to.equal(true);
    const data = out.data as ReadData;
    expect(data.content).to.equal(`${lines.slice(10, 15).join("\n")}\n`); // 5 × 9 = 45 bytes
    expect(data).to.include({ start_line: 11, end_line: 15, total_lines: 100, truncated: true });

    const next = (await read({ path: "big.txt", start_line: data.end_line + 1 }, 50))
      .data as ReadData;
    expect(next.content.startsWith("line 016\n")).to.equal(true);
  });

  it("cuts a single over-long line without splitting a character", async () => {
    await writeFile(path.join(ws.root, "wide.txt"), `${"é".repeat(10)}\nshort\n`); // é = 2 bytes
    const out = await read({ path: "wide.txt" }, 7);
    const data = out.data as ReadData;
    expect(data.content).to.equal("ééé");
    expect(data).to.include({ start_line: 1, end_line: 1, total_lines: 2, truncated: true });
  });

  it("streams files far larger than the cap and still counts every line", async () => {
    const total = 200_000;
    await writeFile(path.join(ws.root, "huge.txt"), "0123456789\n".repeat(total)); // 2.2 MB
    const out = await read({ path: "huge.txt", start_line: total - 1 }, 1024);
    const data = out.data as ReadData;
    expect(data).to.include({
      content: "0123456789\n0123456789\n",
      start_line: total - 1,
      end_line: total,
      total_lines: total,
      truncated: false,
    });
  });

  it("refuses a directory, a binary file and a FIFO", async () => {
    const dir = await read({ path: "docs" });
    expect(dir.ok).to.equal(false);
    expect(dir.error).to.equal('"docs" is a directory; use list_files to see its content');
    expect(dir.data).to.equal(null);

    // The NUL byte is not at the start, but within the sniffed first 8 KiB.
    await writeFile(
      path.join(ws.root, "bin.dat"),
      Buffer.concat([Buffer.from("a".repeat(5000)), Buffer.from([0, 1, 2])]),
    );
    const bin = await read({ path: "bin.dat" });
    expect(bin).to.deep.equal({ ok: false, error: '"bin.dat" is a binary file', data: null });

    execFileSync("mkfifo", [path.join(ws.root, "pipe")]);
    const fifo = await read({ path: "pipe" });
    expect(fifo).to.deep.equal({ ok: false, error: '"pipe" is not a regular file', data: null });
  });

  it("reads a NUL byte past the first 8 KiB as text", async () => {
    await writeFile(
      path.join(ws.root, "late-nul.txt"),
      Buffer.concat([Buffer.from(`${"b".repeat(9000)}\n`), Buffer.from([0])]),
    );
    const out = await read({ path: "late-nul.txt" });
    expect(out.ok).to.equal(true);
    expect(out.data).to.include({ total_lines: 2 });
  });

  it("fails on a missing file and on paths leaving the workspace", async () => {
    expect(await read({ path: "missing.txt" })).to.deep.equal({
      ok: false,
      error: '"missing.txt" does not exist',
      data: null,
    });
    const outside = path.join(ws.dataDir, "secret.txt");
    await writeFile(outside, "secret");
    await symlink(outside, path.join(ws.root, "secret-link"));
    const viaLink = await read({ path: "secret-link" });
    expect(viaLink.ok).to.equal(false);
    expect(viaLink.error).to.match(/outside the workspace/);
    const absolute = await read({ path: outside });
    expect(absolute.ok).to.equal(false);
    expect(absolute.error).to.match(/outside the workspace/);
  });

  it("follows a symlink that stays inside the workspace", async () => {
    await symlink("docs/five.txt", path.join(ws.root, "five-link"));
    const out = await read({ path: "five-link", end_line: 1 });
    expect(out.data).to.include({ path: "five-link", content: "one\n" });
  });

  it("refuses to start when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const out = await runTool(
      readFileTool,
      { path: "docs/five.txt" },
      contextFor(ws.root, { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
  });
});
