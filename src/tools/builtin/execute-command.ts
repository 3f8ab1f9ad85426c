/**
 * `execute_command`: one `/bin/sh -c` command run in the workspace folder.
 *
 * Invariants:
 * - the shell leads its own process group; on timeout, on abort and once the shell has exited,
 *   the whole group gets SIGKILL, so background children (`sleep 100 &`) never outlive the call;
 * - the child sees a minimal environment (no farm secrets): PATH, HOME = the workspace,
 *   LANG=C.UTF-8 and TMPDIR = `<workspace>/.tmp`;
 * - each output stream is capped at `limits.commandOutputMaxBytes` (head and tail kept);
 * - output also goes live to `ctx.onOutput` chunk by chunk, uncapped and in arrival order per
 *   stream, decoded so that a character split across two chunks is passed on whole;
 * - the promise settles only once the shell has been reaped and both pipes are closed, with the
 *   timer and the abort listener removed.
 *
 * Confinement here is the working directory only: the command runs with the worker's user and
 * can reach anything that user can. Real isolation (container, namespaces) is a deployment concern.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { constants as osConstants } from "node:os";
import path from "node:path";
import type { Readable } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { z } from "zod";
import type { OutputStream, Tool, ToolContext, ToolOutput } from "../tool.js";
import { CappedOutput } from "./capped-output.js";
import { ABORTED_ERROR, failure } from "./result.js";

const MAX_COMMAND_CHARS = 10_000;
const MIN_TIMEOUT_MS = 1_000;
/**
 * After the shell exits and its group is killed, a process that left the group (setsid) may
 * still hold the pipes open; past this grace the pipes are closed from our side.
 */
const PIPE_DRAIN_GRACE_MS = 1_000;
const TMP_DIR_NAME = ".tmp";
const FALLBACK_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/** Shell convention for "killed by signal N". */
const SIGNAL_EXIT_BASE = 128;

const ExecuteCommandInput = z.object({
  command: z
    .string()
    .min(1)
    .max(MAX_COMMAND_CHARS)
    .describe("Shell command line, run by /bin/sh -c in the workspace root folder."),
  timeout_ms: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Kill the command (and everything it started) after this many milliseconds. " +
        "Clamped to the server's allowed range; default is the server's command timeout.",
    ),
});
type ExecuteCommandArgs = z.infer<typeof ExecuteCommandInput>;

/** The `data` of an `execute_command` result. */
export interface CommandResult {
  exit_code: number;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  aborted: boolean;
  duration_ms: number;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, "SIGKILL");
  } catch {
    // ESRCH: the group is already empty.
  }
}

function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return SIGNAL_EXIT_BASE + (signal ? osConstants.signals[signal] : 0);
}

/**
 * Feeds one pipe into its capped buffer and, live, to `ctx.onOutput`. Returns the flush for the
 * end of the stream (the bytes of a character the stream ended in the middle of).
 */
function collect(
  pipe: Readable | null,
  stream: OutputStream,
  capped: CappedOutput,
  ctx: ToolContext,
): () => void {
  const decoder = new StringDecoder("utf8");
  pipe?.on("data", (chunk: Buffer) => {
    capped.write(chunk);
    if (!ctx.onOutput) return;
    const text = decoder.write(chunk);
    if (text !== "") ctx.onOutput(stream, text);
  });
  return () => {
    const rest = decoder.end();
    if (rest !== "") ctx.onOutput?.(stream, rest);
  };
}

function run(command: string, timeoutMs: number, ctx: ToolContext): Promise<ToolOutput> {
  // Checked again here: the signal may have fired while the temp folder was being created, and
  // an abort listener added after the fact would never run.
  if (ctx.signal.aborted) return Promise.resolve(failure(ABORTED_ERROR));
  const root = ctx.workspaceRoot;
  const started = performance.now();
  let child: ChildProcess;
  try {
    child = spawn("/bin/sh", ["-c", command], {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? FALLBACK_PATH,
        HOME: root,
        LANG: "C.UTF-8",
        TMPDIR: path.join(root, TMP_DIR_NAME),
      },
    });
  } catch (err) {
    // Synchronous refusals, e.g. a NUL byte in the command. Not transient (a spawn failure
    // recurs with the same command), so `failure`'s default applies.
    return Promise.resolve(failure(`could not start the command: ${(err as Error).message}`));
  }
  const stdout = new CappedOutput(ctx.limits.commandOutputMaxBytes);
  const stderr = new CappedOutput(ctx.limits.commandOutputMaxBytes);
  const flushLive = [
    collect(child.stdout, "stdout", stdout, ctx),
    collect(child.stderr, "stderr", stderr, ctx),
  ];

  return new Promise((resolve) => {
    let timedOut = false;
    let aborted = false;
    let drainTimer: NodeJS.Timeout | undefined;
    const timeoutTimer = setTimeout(() => {
      timedOut = !aborted;
      killGroup(child);
    }, timeoutMs);
    const onAbort = () => {
      aborted = !timedOut;
      killGroup(child);
    };
    ctx.signal.addEventListener("abort", onAbort, { once: true });

    // Once the shell has exited its result is settled: a timeout or an abort in the pipe-drain
    // grace below must not relabel it.
    const stopWatching = () => {
      clearTimeout(timeoutTimer);
      ctx.signal.removeEventListener("abort", onAbort);
    };
    child.once("exit", () => {
      stopWatching();
      killGroup(child);
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, PIPE_DRAIN_GRACE_MS);
    });
    child.once("error", (err) => {
      // Only a failed spawn gets here without an exit (there is no process to wait for).
      if (child.pid !== undefined) return;
      stopWatching();
      resolve(failure(`could not start the command: ${err.message}`));
    });
    child.once("close", (code, signal) => {
      stopWatching();
      clearTimeout(drainTimer);
      for (const flush of flushLive) flush();
      const result: CommandResult = {
        exit_code: exitCode(code, signal),
        stdout: stdout.text(),
        stderr: stderr.text(),
        timed_out: timedOut,
        aborted,
        duration_ms: Math.round(performance.now() - started),
      };
      const error = aborted
        ? ABORTED_ERROR
        : timedOut
          ? `timed out after ${timeoutMs} ms`
          : result.exit_code !== 0
            ? `exit code ${result.exit_code}`
            : undefined;
      resolve({
        ok: error === undefined,
        data: result,
        ...(error === undefined ? {} : { error }),
        exit_code: result.exit_code,
        truncated: stdout.truncated || stderr.truncated,
      });
    });
  });
}

export const executeCommandTool: Tool<ExecuteCommandArgs> = {
  name: "execute_command",
  description:
    "Run a shell command (/bin/sh -c) in the workspace root folder, with no stdin. Returns " +
    "exit_code, stdout, stderr and duration_ms. The command and everything it started are killed " +
    "at the timeout or when it ends; background processes do not survive. Long output keeps its " +
    "beginning and end.",
  version: "1",
  kind: "mutating",
  family: "exec",
  policy: { idempotent: false },
  input: ExecuteCommandInput,
  async run(args, ctx) {
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    const { commandTimeoutMs, maxCommandTimeoutMs } = ctx.limits;
    const timeoutMs = Math.min(
      Math.max(args.timeout_ms ?? commandTimeoutMs, MIN_TIMEOUT_MS),
      maxCommandTimeoutMs,
    );
    try {
      await mkdir(path.join(ctx.workspaceRoot, TMP_DIR_NAME), { recursive: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "unknown error";
      return failure(`cannot create the temp folder "${TMP_DIR_NAME}" in the workspace (${code})`);
    }
    return run(args.command, timeoutMs, ctx);
  },
};
