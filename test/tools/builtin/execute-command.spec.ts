import { getEventListeners } from "node:events";
import { access, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "chai";
import {
  type CommandResult,
  executeCommandTool,
} from "../../../src/tools/builtin/execute-command.js";
import type { ToolContext, ToolLimits } from "../../../src/tools/tool.js";
import { contextFor, makeWorkspace, runTool, type TempWorkspace } from "./helpers.js";

/** A background child writes its marker file this long after it starts. */
const MARKER_DELAY_S = 2;
/** How long a test waits before concluding the marker will never appear. */
const MARKER_WAIT_MS = MARKER_DELAY_S * 1000 + 1500;

function backgroundWriter(marker: string): string {
  return `(sleep ${MARKER_DELAY_S}; echo late > ${marker}) &`;
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

describe("tools/execute_command", function () {
  this.timeout(20_000);
  let ws: TempWorkspace;
  beforeEach(async () => {
    ws = await makeWorkspace();
  });
  afterEach(() => ws.cleanup());

  const exec = (args: unknown, ctx: ToolContext = contextFor(ws.root)) =>
    runTool(executeCommandTool, args, ctx);
  const withLimits = (limits: Partial<ToolLimits>) => contextFor(ws.root, { limits });

  it("runs a command and returns its output", async () => {
    const out = await exec({ command: "echo hello; printf 'no newline'" });
    expect(out.ok).to.equal(true);
    expect(out).to.not.have.property("error");
    expect(out.exit_code).to.equal(0);
    expect(out.truncated).to.equal(false);
    const data = out.data as CommandResult;
    expect(data).to.include({
      exit_code: 0,
      stdout: "hello\nno newline",
      stderr: "",
      timed_out: false,
      aborted: false,
    });
    expect(data.duration_ms).to.be.a("number").and.to.be.at.least(0);
  });

  it("streams output to onOutput as it arrives, in order, without splitting characters", async () => {
    const received: [string, string][] = [];
    const ctx: ToolContext = {
      ...contextFor(ws.root),
      onOutput: (stream, text) => received.push([stream, text]),
    };
    // "é" is written one byte at a time (0xc3, then 0xa9) so it spans two chunks.
    const out = await exec(
      {
        command:
          "echo one; sleep 0.2; echo oops >&2; sleep 0.2; printf '\\303'; sleep 0.2; printf '\\251 two\\n'",
      },
      ctx,
    );
    expect(out.ok).to.equal(true);
    expect((out.data as CommandResult).stdout).to.equal("one\né two\n");
    expect(received.filter(([s]) => s === "stderr")).to.deep.equal([["stderr", "oops\n"]]);
    const stdoutChunks = received.filter(([s]) => s === "stdout").map(([, t]) => t);
    expect(stdoutChunks.join("")).to.equal("one\né two\n");
    expect(stdoutChunks.join("")).to.not.include("\uFFFD");
    expect(stdoutChunks[0]).to.equal("one\n");
    // Arrival order across streams: stdout's first line, then stderr, then the rest of stdout.
    expect(received.map(([s]) => s)).to.deep.equal(["stdout", "stderr", "stdout"]);
  });

  it("reports a non-zero exit code and stderr", async () => {
    const out = await exec({ command: "echo oops >&2; exit 3" });
    expect(out.ok).to.equal(false);
    expect(out.error).to.equal("exit code 3");
    expect(out.exit_code).to.equal(3);
    expect(out.data).to.include({ exit_code: 3, stdout: "", stderr: "oops\n" });
  });

  it("reports a command killed by a signal as 128 + signal number", async () => {
    const out = await exec({ command: "kill -TERM $$" });
    expect(out.exit_code).to.equal(143);
    expect(out.error).to.equal("exit code 143");
  });

  it("runs in the workspace with a minimal environment and no stdin", async () => {
    process.env.WUNDER_TOOLS_TEST_SECRET = "sk-should-not-leak";
    try {
      const out = await exec({
        command:
          'pwd; echo "$HOME"; echo "$TMPDIR"; echo "$LANG"; test -d "$TMPDIR" && echo tmp-ok; cat; env',
      });
      const lines = (out.data as CommandResult).stdout.split("\n");
      expect(lines.slice(0, 5)).to.deep.equal([
        ws.root,
        ws.root,
        path.join(ws.root, ".tmp"),
        "C.UTF-8",
        "tmp-ok",
      ]);
      const names = lines
        .slice(5)
        .filter(Boolean)
        .map((l) => l.split("=")[0]);
      expect(names).to.include.members(["PATH", "HOME", "LANG", "TMPDIR"]);
      // Only what the shell itself adds may appear besides the four.
      for (const name of names) {
        expect(["PATH", "HOME", "LANG", "TMPDIR", "PWD", "OLDPWD", "SHLVL", "_"]).to.include(name);
      }
    } finally {
      delete process.env.WUNDER_TOOLS_TEST_SECRET;
    }
  });

  it("caps each stream, keeping head and tail around an omission marker", async () => {
    const cap = 1000;
    const full = `${Array.from({ length: 5000 }, (_, i) => String(i + 1)).join("\n")}\n`;
    const out = await exec(
      { command: "seq 1 5000; seq 1 5000 >&2" },
      withLimits({ commandOutputMaxBytes: cap }),
    );
    const expected = `${full.slice(0, cap / 2)}\n…[${full.length - cap} bytes omitted]…\n${full.slice(-cap / 2)}`;
    const data = out.data as CommandResult;
    expect(data.stdout).to.equal(expected);
    expect(data.stderr).to.equal(expected);
    expect(out.ok).to.equal(true);
    expect(out.truncated).to.equal(true);
  });

  it("keeps output at exactly the cap whole", async () => {
    const out = await exec(
      { command: "printf '%0100d' 0" },
      withLimits({ commandOutputMaxBytes: 100 }),
    );
    expect((out.data as CommandResult).stdout).to.equal("0".repeat(100));
    expect(out.truncated).to.equal(false);
  });

  it("kills the whole process group on timeout, background children included", async () => {
    const out = await exec({
      command: `${backgroundWriter("timeout-marker")} echo started; sleep 30`,
      timeout_ms: 1000,
    });
    const data = out.data as CommandResult;
    expect(out.ok).to.equal(false);
    expect(out.error).to.equal("timed out after 1000 ms");
    expect(data).to.include({ timed_out: true, aborted: false, stdout: "started\n" });
    expect(out.exit_code).to.equal(137);
    expect(data.duration_ms).to.be.below(30_000);

    await sleep(MARKER_WAIT_MS);
    expect(await exists(path.join(ws.root, "timeout-marker"))).to.equal(false);
  });

  it("control: a background child that is waited for does write its marker", async () => {
    const out = await exec({ command: `${backgroundWriter("control-marker")} wait` });
    expect(out.ok).to.equal(true);
    expect(await exists(path.join(ws.root, "control-marker"))).to.equal(true);
  });

  it("kills background children left behind when the shell exits", async () => {
    const out = await exec({ command: `${backgroundWriter("leftover-marker")} echo done` });
    expect(out.ok).to.equal(true);
    expect((out.data as CommandResult).stdout).to.equal("done\n");
    await sleep(MARKER_WAIT_MS);
    expect(await exists(path.join(ws.root, "leftover-marker"))).to.equal(false);
  });

  it("does not wait for a process that left the group but holds the output pipe", async () => {
    // setsid puts the child in a new session, out of reach of the group kill; the short sleep
    // lets it get there before the shell exits.
    const escapeS = 5;
    const out = await exec({
      command: `setsid sh -c 'sleep ${escapeS}; touch escaped-marker' & sleep 0.5; echo detached`,
    });
    expect(out.ok).to.equal(true);
    expect((out.data as CommandResult).stdout).to.equal("detached\n");
    expect((out.data as CommandResult).duration_ms).to.be.below(escapeS * 1000);
    // The marker proves the child really escaped and kept the pipe open all along.
    const marker = path.join(ws.root, "escaped-marker");
    for (let i = 0; i < 40 && !(await exists(marker)); i++) await sleep(250);
    expect(await exists(marker)).to.equal(true);
  });

  it("kills the process group when the signal aborts mid-run", async () => {
    const controller = new AbortController();
    const ctx = contextFor(ws.root, { signal: controller.signal });
    setTimeout(() => controller.abort(), 300);
    const out = await exec({ command: `${backgroundWriter("abort-marker")} sleep 30` }, ctx);
    const data = out.data as CommandResult;
    expect(out.ok).to.equal(false);
    expect(out.error).to.equal("aborted");
    expect(data).to.include({ aborted: true, timed_out: false });
    expect(data.duration_ms).to.be.below(30_000);
    expect(getEventListeners(controller.signal, "abort")).to.have.length(0);

    await sleep(MARKER_WAIT_MS);
    expect(await exists(path.join(ws.root, "abort-marker"))).to.equal(false);
  });

  it("does not start when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    const out = await exec(
      { command: "touch ran" },
      contextFor(ws.root, { signal: controller.signal }),
    );
    expect(out).to.deep.equal({ ok: false, error: "aborted", data: null });
    expect(await exists(path.join(ws.root, "ran"))).to.equal(false);
  });

  it("settles only after the shell is reaped, leaving no listener on the signal", async () => {
    const controller = new AbortController();
    const out = await exec(
      { command: "echo $$" },
      contextFor(ws.root, { signal: controller.signal }),
    );
    const pid = Number((out.data as CommandResult).stdout.trim());
    expect(pid).to.be.greaterThan(0);
    // A zombie would still answer signal 0.
    expect(() => process.kill(pid, 0))
      .to.throw()
      .with.property("code", "ESRCH");
    expect(getEventListeners(controller.signal, "abort")).to.have.length(0);
  });

  it("clamps timeout_ms into [1000, maxCommandTimeoutMs] and defaults to commandTimeoutMs", async () => {
    const low = await exec({ command: "sleep 30", timeout_ms: 1 });
    expect(low.error).to.equal("timed out after 1000 ms");
    const high = await exec(
      { command: "sleep 30", timeout_ms: 999_999 },
      withLimits({ maxCommandTimeoutMs: 1500 }),
    );
    expect(high.error).to.equal("timed out after 1500 ms");
    const byDefault = await exec({ command: "sleep 30" }, withLimits({ commandTimeoutMs: 1200 }));
    expect(byDefault.error).to.equal("timed out after 1200 ms");
  });

  it("fails cleanly when the command cannot be started or .tmp is not a folder", async () => {
    const nul = await exec({ command: "echo a\0b" });
    expect(nul.ok).to.equal(false);
    expect(nul.error).to.match(/^could not start the command/);
    expect(nul.data).to.equal(null);

    await rm(path.join(ws.root, ".tmp"), { recursive: true, force: true });
    await writeFile(path.join(ws.root, ".tmp"), "not a folder");
    const blocked = await exec({ command: "true" });
    expect(blocked).to.deep.equal({
      ok: false,
      error: 'cannot create the temp folder ".tmp" in the workspace (EEXIST)',
      data: null,
    });
  });

  it("validates the command length", () => {
    expect(executeCommandTool.input.safeParse({ command: "" }).success).to.equal(false);
    expect(executeCommandTool.input.safeParse({ command: "x".repeat(10_001) }).success).to.equal(
      false,
    );
    expect(executeCommandTool.input.safeParse({ command: "x".repeat(10_000) }).success).to.equal(
      true,
    );
  });
});
