/**
 * `list_files`: the tree under a workspace folder, a few levels deep.
 *
 * Invariants:
 * - symlinks are listed, never followed, so a listing cannot loop or leave the workspace;
 * - the walk is breadth-first and stops after `MAX_ENTRIES`, so a huge tree costs a bounded number
 *   of stats and the shallow entries (the useful overview) are the ones kept;
 * - entries come back in tree order: siblings by name (code points), each folder before its content;
 * - sockets, FIFOs and devices are left out: no file tool can do anything useful with them.
 */
import type { Dirent } from "node:fs";
import { lstat, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Tool } from "../tool.js";
import { ABORTED_ERROR, failure, failureFrom } from "./result.js";
import { resolveInWorkspace, toWorkspacePath } from "./workspace.js";

export const LIST_FILES_MAX_ENTRIES = 500;

const ListFilesInput = z.object({
  path: z
    .string()
    .default(".")
    .describe('Folder to list, relative to the workspace root. Default "." (the root).'),
  max_depth: z
    .number()
    .int()
    .min(1)
    .max(8)
    .default(2)
    .describe("How many levels to descend: 1 lists only the folder's direct children. Default 2."),
});
type ListFilesArgs = z.infer<typeof ListFilesInput>;

type EntryType = "file" | "dir" | "symlink";

interface ListEntry {
  /** Relative to the workspace root, "/"-separated. */
  path: string;
  type: EntryType;
  /** File size; the link's own size for a symlink; 0 for a folder. */
  size_bytes: number;
}

function entryType(dirent: Dirent): EntryType | undefined {
  if (dirent.isSymbolicLink()) return "symlink";
  if (dirent.isDirectory()) return "dir";
  if (dirent.isFile()) return "file";
  return undefined;
}

/** The entry's own size (a symlink is not followed); 0 if it vanished meanwhile. */
async function sizeOf(abs: string): Promise<number> {
  try {
    return (await lstat(abs)).size;
  } catch {
    return 0;
  }
}

function compareTreeOrder(a: ListEntry, b: ListEntry): number {
  const as = a.path.split("/");
  const bs = b.path.split("/");
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i] as string;
    const y = bs[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return as.length - bs.length;
}

export const listFilesTool: Tool<ListFilesArgs> = {
  name: "list_files",
  description:
    "List files and folders in the workspace, recursively up to max_depth levels. Returns each " +
    "entry's path (relative to the workspace root), type (file, dir or symlink) and size. " +
    `At most ${LIST_FILES_MAX_ENTRIES} entries; \`truncated\` is true when there were more ` +
    "(list a subfolder or lower max_depth).",
  version: "1",
  kind: "read_only",
  family: "fs",
  policy: { idempotent: true },
  input: ListFilesInput,
  async run(args, ctx) {
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    try {
      const dir = await resolveInWorkspace(ctx.workspaceRoot, args.path);
      if (!(await stat(dir)).isDirectory()) {
        return failure(`${JSON.stringify(args.path)} is not a directory; use read_file to read it`);
      }
      const entries: ListEntry[] = [];
      let truncated = false;
      let level = [dir];
      for (let depth = 1; depth <= args.max_depth && level.length > 0 && !truncated; depth++) {
        if (ctx.signal.aborted) return failure(ABORTED_ERROR);
        const nextLevel: string[] = [];
        for (const folder of level) {
          let dirents: Dirent[];
          try {
            dirents = await readdir(folder, { withFileTypes: true });
          } catch (err) {
            // The listed folder itself must be readable; an unreadable or vanished subfolder
            // just shows up without content.
            if (folder === dir) throw err;
            continue;
          }
          dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
          for (const dirent of dirents) {
            const type = entryType(dirent);
            if (type === undefined) continue;
            if (entries.length === LIST_FILES_MAX_ENTRIES) {
              truncated = true;
              break;
            }
            const abs = path.join(folder, dirent.name);
            entries.push({
              path: toWorkspacePath(ctx.workspaceRoot, abs),
              type,
              size_bytes: type === "dir" ? 0 : await sizeOf(abs),
            });
            if (type === "dir") nextLevel.push(abs);
          }
          if (truncated) break;
        }
        level = nextLevel;
      }
      entries.sort(compareTreeOrder);
      return {
        ok: true,
        data: { path: toWorkspacePath(ctx.workspaceRoot, dir), entries, truncated },
        truncated,
      };
    } catch (err) {
      return failureFrom(err, args.path);
    }
  },
};
