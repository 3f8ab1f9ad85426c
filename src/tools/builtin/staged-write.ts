/**
 * Writing a workspace file without ever leaving it half-written: the content goes to a temp
 * file beside the target (same folder, so the final rename is atomic), with the mode the file
 * had; the caller renames it into place once every check passed (write_file at once, apply_patch
 * after staging all its files).
 *
 * Invariants:
 * - a temp name is `.<name>.<12 hex>.tmp` in the target's folder, created exclusively (`wx`);
 * - a staging that fails removes its own temp file before it throws.
 */
import { randomBytes } from "node:crypto";
import { chmod, realpath, stat, unlink, writeFile } from "node:fs/promises";
import path from "node:path";

const TEMP_SUFFIX_BYTES = 6;
/** The permission bits kept across a rewrite (setuid/setgid/sticky and rwx). */
export const PERMISSION_BITS = 0o7777;

/** Where the bytes really go: the target of a symlink, or the path itself when it is new. */
export async function writeTarget(file: string): Promise<string> {
  try {
    return await realpath(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return file;
    throw err;
  }
}

/** The permission bits of `file`, or undefined when it does not exist (yet). */
export function permissionsOf(file: string): Promise<number | undefined> {
  return stat(file).then(
    (s) => s.mode & PERMISSION_BITS,
    () => undefined,
  );
}

/** Writes `content` to a new temp file beside `target` (with `mode` if given); returns its path. */
export async function stageBeside(
  target: string,
  content: string,
  mode: number | undefined,
): Promise<string> {
  const temp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(TEMP_SUFFIX_BYTES).toString("hex")}.tmp`,
  );
  try {
    await writeFile(temp, content, { flag: "wx" });
    if (mode !== undefined) await chmod(temp, mode);
    return temp;
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}
