/**
 * How a tool turns a problem the model caused into a `ToolOutput` rather than a throw.
 *
 * Invariant: messages name paths as the model wrote them, never the host's absolute paths.
 */
import type { ToolOutput } from "../tool.js";
import { WorkspaceError } from "./workspace.js";

export const ABORTED_ERROR = "aborted";

const FS_MESSAGES: Readonly<Record<string, (quotedPath: string) => string>> = {
  ENOENT: (p) => `${p} does not exist`,
  ENOTDIR: (p) => `a parent folder of ${p} is not a directory`,
  EISDIR: (p) => `${p} is a directory`,
  EEXIST: (p) => `${p} already exists`,
  EACCES: (p) => `permission denied for ${p}`,
  EPERM: (p) => `operation not permitted on ${p}`,
  ELOOP: (p) => `too many levels of symbolic links in ${p}`,
  ENAMETOOLONG: (p) => `${p} is too long a name`,
  ENOSPC: () => "no space left on the device",
  EROFS: () => "the file system is read-only",
};

export function failure(error: string): ToolOutput {
  return { ok: false, error, data: null };
}

/**
 * The failure for an error met while working on `requestedPath`. Rethrows anything that is neither
 * a `WorkspaceError` nor a system error: that is a bug, not the model's doing.
 */
export function failureFrom(err: unknown, requestedPath: string): ToolOutput {
  if (err instanceof WorkspaceError) return failure(err.message);
  const sys = err as NodeJS.ErrnoException;
  if (err instanceof Error && typeof sys.code === "string" && typeof sys.syscall === "string") {
    const quoted = JSON.stringify(requestedPath);
    const describe = FS_MESSAGES[sys.code];
    return failure(describe ? describe(quoted) : `${sys.code} during ${sys.syscall} on ${quoted}`);
  }
  throw err;
}
