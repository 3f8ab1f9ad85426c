/**
 * Debian's `promtool` (package `prometheus`) for the observability tests: whether it is there,
 * and one call to it. Tests that need it skip, and say so, where it is missing.
 */
import { spawnSync } from "node:child_process";

export const HAS_PROMTOOL = spawnSync("promtool", ["--version"]).status === 0;

/** Runs `promtool …args` (with `input` on stdin, in `cwd`); its status and all its output. */
export function promtool(
  args: string[],
  options: { input?: string; cwd?: string } = {},
): { status: number | null; output: string } {
  const run = spawnSync("promtool", args, { ...options, encoding: "utf8" });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** In a mocha `before`/`it`: skips the rest, logging what was skipped, when promtool is missing. */
export function skipWithoutPromtool(context: Mocha.Context, what: string): void {
  if (HAS_PROMTOOL) return;
  console.log(`    ${what} SKIPPED: promtool is not installed (apt-get install prometheus)`);
  context.skip();
}
