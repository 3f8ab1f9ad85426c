/**
 * The per-user workspace folder and path confinement for the file tools.
 *
 * Invariants:
 * - a workspace is `<dataDir>/workspaces/<userId>`, addressed by its real (symlink-free) path;
 * - `resolveInWorkspace` returns a path only if both its lexical form and its real form (symlinks
 *   followed, including dangling ones) lie inside the workspace; otherwise it throws
 *   `WorkspaceError`. It returns the lexical form, so results name paths the way the model did.
 *
 * Paths are checked, then used: a symlink swapped in between (by a concurrent command) can still
 * redirect the use. This confines what the model asks of the file tools; it is not a sandbox.
 */
import { lstat, mkdir, readlink, realpath } from "node:fs/promises";
import path from "node:path";

const USER_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** Same bound as the kernel's (Linux MAXSYMLINKS = 40) so loops end with a clear error. */
const MAX_SYMLINK_HOPS = 40;
/** Errors that mean "this path (or a component of it) does not exist yet". */
const MISSING_CODES = new Set(["ENOENT", "ENOTDIR"]);

/** A requested path is not allowed; the message is safe to show to the model. */
export class WorkspaceError extends Error {
  override name = "WorkspaceError";
}

export async function ensureWorkspace(dataDir: string, userId: string): Promise<string> {
  // Upstream validates userId; re-checked here because this is the line that builds a path from
  // it. The pattern refuses "", ".", ".." and any separator.
  if (!USER_ID.test(userId)) {
    throw new WorkspaceError(`invalid user id ${JSON.stringify(userId)}`);
  }
  const dir = path.resolve(dataDir, "workspaces", userId);
  await mkdir(dir, { recursive: true });
  return realpath(dir);
}

/**
 * Absolute path of `requested` inside the workspace at `root`. `requested` is relative to the
 * root; an absolute path is accepted only when it already lies inside the root.
 */
export async function resolveInWorkspace(root: string, requested: string): Promise<string> {
  if (requested.includes("\0")) throw new WorkspaceError("path contains a NUL byte");
  const lexicalRoot = path.resolve(root);
  let realRoot: string;
  try {
    realRoot = await realpath(lexicalRoot);
  } catch {
    throw new WorkspaceError("the workspace folder does not exist");
  }
  const outside = () =>
    new WorkspaceError(`path ${JSON.stringify(requested)} is outside the workspace`);

  let candidate: string;
  if (path.isAbsolute(requested)) {
    // Accept the root under either spelling, then rebase onto the one callers gave us.
    const base = [lexicalRoot, realRoot].find((r) => isInside(r, path.resolve(requested)));
    if (base === undefined) throw outside();
    candidate = path.join(lexicalRoot, path.relative(base, path.resolve(requested)));
  } else {
    candidate = path.resolve(lexicalRoot, requested);
  }
  if (!isInside(lexicalRoot, candidate)) throw outside();

  // The root's own spelling is resolved already: walk only what lies below it.
  const real = await physicalPath(realRoot, path.relative(lexicalRoot, candidate));
  if (!isInside(realRoot, real)) {
    throw new WorkspaceError(
      `path ${JSON.stringify(requested)} resolves outside the workspace through a symlink`,
    );
  }
  return candidate;
}

/** `abs` relative to the workspace root, "/"-separated; "." for the root itself. */
export function toWorkspacePath(root: string, abs: string): string {
  const rel = path.relative(path.resolve(root), abs);
  return rel === "" ? "." : rel.split(path.sep).join("/");
}

function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * Like `realpath` of `start/rel` (with `start` already physical), but done one component at a
 * time so that a missing tail is kept as is and a dangling symlink is followed to where it
 * points: creating a file through it must not land outside the workspace. `..` is applied to the
 * physical path reached so far, as the kernel does.
 */
async function physicalPath(start: string, rel: string): Promise<string> {
  let current = start;
  const pending = rel.split(path.sep);
  let hops = 0;
  for (let comp = pending.shift(); comp !== undefined; comp = pending.shift()) {
    if (comp === "" || comp === ".") continue;
    if (comp === "..") {
      current = path.dirname(current);
      continue;
    }
    const next = path.join(current, comp);
    let isLink: boolean;
    try {
      isLink = (await lstat(next)).isSymbolicLink();
    } catch (err) {
      if (!MISSING_CODES.has(errorCode(err))) throw err;
      // Only a symlink target can put ".." here; the kernel would fail on it, and guessing where
      // it would lead once the missing folder exists is not worth the risk.
      if (pending.includes("..")) throw new WorkspaceError("path goes through a broken symlink");
      return path.join(next, ...pending);
    }
    if (!isLink) {
      current = next;
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) throw new WorkspaceError("too many levels of symbolic links");
    const target = await readlink(next);
    if (path.isAbsolute(target)) current = path.parse(target).root;
    pending.unshift(...target.split(path.sep));
  }
  return current;
}

function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? "";
}
