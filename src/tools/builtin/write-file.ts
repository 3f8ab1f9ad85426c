/**
 * `write_file`: create, replace or append to a text file of the workspace.
 *
 * Invariants:
 * - a replace is atomic: the content goes to a temp file in the same folder, then a rename puts it
 *   in place, so a reader (or a crash) sees the old file or the new one, never half of it; the
 *   temp file is removed if anything fails;
 * - a replace keeps the mode of the file it replaces (a script stays executable) and writes
 *   through a symlink to its (already confined) target instead of replacing the link;
 * - missing parent folders are created.
 */
import { appendFile, mkdir, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Tool } from "../tool.js";
import { ABORTED_ERROR, failure, failureFrom } from "./result.js";
import { permissionsOf, stageBeside, writeTarget } from "./staged-write.js";
import { resolveInWorkspace, toWorkspacePath } from "./workspace.js";

const WriteFileInput = z.object({
  path: z.string().min(1).describe("File to write, relative to the workspace root."),
  content: z.string().describe("The text to write (UTF-8)."),
  append: z
    .boolean()
    .default(false)
    .describe("Add content at the end of the file instead of replacing it. Default false."),
});
type WriteFileArgs = z.infer<typeof WriteFileInput>;

async function replaceAtomically(file: string, content: string): Promise<void> {
  const temp = await stageBeside(file, content, await permissionsOf(file));
  try {
    await rename(temp, file);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
}

export const writeFileTool: Tool<WriteFileArgs> = {
  name: "write_file",
  description:
    "Write a text file in the workspace, creating missing parent folders. Replaces the whole file " +
    "(atomically) unless append is true. Returns the number of bytes written.",
  version: "1",
  kind: "mutating",
  family: "fs",
  policy: { idempotent: true },
  input: WriteFileInput,
  async run(args, ctx) {
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    const quoted = JSON.stringify(args.path);
    try {
      const resolved = await resolveInWorkspace(ctx.workspaceRoot, args.path);
      const existing = await stat(resolved).catch(() => undefined);
      if (existing?.isDirectory()) return failure(`${quoted} is a directory`);
      // Appending to a FIFO would block; devices and sockets are not files to write either.
      if (existing && !existing.isFile()) return failure(`${quoted} is not a regular file`);
      try {
        await mkdir(path.dirname(resolved), { recursive: true });
      } catch (err) {
        // mkdir says EEXIST when the parent itself is a file, ENOTDIR when an ancestor is.
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EEXIST" || code === "ENOTDIR") {
          return failure(`a parent folder of ${quoted} is not a directory`);
        }
        throw err;
      }
      const file = await writeTarget(resolved);
      if (args.append) await appendFile(file, args.content);
      else await replaceAtomically(file, args.content);
      return {
        ok: true,
        data: {
          path: toWorkspacePath(ctx.workspaceRoot, resolved),
          bytes_written: Buffer.byteLength(args.content),
        },
      };
    } catch (err) {
      return failureFrom(err, args.path);
    }
  },
};
