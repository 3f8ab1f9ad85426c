/**
 * `apply_patch`: add, update, move and delete workspace text files as described by a patch, in
 * the Codex format or as a unified diff (see patch-parse.ts).
 *
 * Invariants:
 * - all or nothing: every operation is checked and every file's new content computed (in
 *   memory, operations applied in order, so later ones see earlier ones) before anything is
 *   written; then all new contents go to temp files beside their targets, and only when all are
 *   written are they renamed into place and the deleted files removed. A failure before the
 *   renames leaves the workspace as it was (bar created parent folders);
 * - every path, including a move target, goes through `resolveInWorkspace`;
 * - hunks are located by their lines, not their line numbers: each is searched after the previous
 *   one, first exactly, then ignoring trailing whitespace, then ignoring surrounding whitespace
 *   (as Codex does); a unified hunk's start line only picks the nearest of several matches;
 *   matched context lines keep the file's own spelling;
 * - only UTF-8 text without NUL bytes is read or written; a file keeps its CRLF line ends, BOM,
 *   final newline (unless a hunk at its end says otherwise) and mode.
 */
import { isUtf8 } from "node:buffer";
import { mkdir, readFile, rename, stat, unlink } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Tool } from "../tool.js";
import { type FileOp, type Hunk, PatchSyntaxError, parsePatch } from "./patch-parse.js";
import { ABORTED_ERROR, failure, failureFrom } from "./result.js";
import { PERMISSION_BITS, stageBeside, writeTarget } from "./staged-write.js";
import { resolveInWorkspace, toWorkspacePath, WorkspaceError } from "./workspace.js";

const MAX_PATCH_CHARS = 1_000_000;
/** Files larger than this are not patched (they would be held in memory a few times over). */
const MAX_FILE_BYTES = 4 * 1024 * 1024;
/** How much of a hunk's expected lines an error shows. */
const SHOWN_LINES = 8;
const SHOWN_LINE_CHARS = 120;
const BOM = "\uFEFF";

const ApplyPatchInput = z.object({
  patch: z
    .string()
    .min(1)
    .max(MAX_PATCH_CHARS)
    .describe(
      "The patch: either the Codex format (*** Begin Patch / *** Add File: | *** Update File: " +
        "[*** Move to:] with @@ hunks | *** Delete File: / *** End Patch) or a unified diff " +
        "(--- a/path, +++ b/path, @@ -l,n +l,n @@ hunks; /dev/null to add or delete).",
    ),
});
type ApplyPatchArgs = z.infer<typeof ApplyPatchInput>;

export interface PatchedFile {
  /** Relative to the workspace root; the new path of a moved file. */
  path: string;
  action: "add" | "update" | "delete" | "move";
  /** The old path of a moved file. */
  from?: string;
  added_lines: number;
  removed_lines: number;
}

/** A problem with the patch against the files; the message is for the model. */
class PatchError extends Error {
  override name = "PatchError";
}

/** Text as lines, with what it takes to write it back the way it was. */
interface TextFile {
  lines: string[];
  finalNewline: boolean;
  crlf: boolean;
  bom: boolean;
}

function splitText(text: string): TextFile {
  const bom = text.startsWith(BOM);
  const lines = (bom ? text.slice(BOM.length) : text).split("\n");
  const finalNewline = lines[lines.length - 1] === "";
  if (finalNewline) lines.pop();
  const ended = finalNewline ? lines : lines.slice(0, -1);
  const crlf = ended.length > 0 && ended.every((l) => l.endsWith("\r"));
  if (crlf) for (let i = 0; i < ended.length; i++) lines[i] = (lines[i] as string).slice(0, -1);
  return { lines, finalNewline, crlf, bom };
}

function joinText({ lines, finalNewline, crlf, bom }: TextFile): string {
  const eol = crlf ? "\r\n" : "\n";
  const body = lines.join(eol) + (finalNewline && lines.length > 0 ? eol : "");
  return (bom ? BOM : "") + body;
}

const MATCH_PASSES: readonly ((line: string) => string)[] = [
  (l) => l,
  (l) => l.trimEnd(),
  (l) => l.trim(),
];

/**
 * Where `pattern` occurs in `lines` at or after `from`, or undefined. The strictest comparison
 * that finds it wins; among its matches, the one at the end (`atEnd`), else the one nearest to
 * `hint`, else the first.
 */
function seek(
  lines: readonly string[],
  pattern: readonly string[],
  from: number,
  hint: number | undefined,
  atEnd: boolean,
): number | undefined {
  const last = lines.length - pattern.length;
  for (const norm of MATCH_PASSES) {
    const wanted = pattern.map(norm);
    const normalized = lines.map(norm);
    const matchesAt = (p: number) => wanted.every((w, k) => normalized[p + k] === w);
    if (atEnd && last >= from && matchesAt(last)) return last;
    let best: number | undefined;
    for (let p = from; p <= last; p++) {
      if (!matchesAt(p)) continue;
      if (hint === undefined) return p;
      if (best === undefined || Math.abs(p - hint) < Math.abs(best - hint)) best = p;
    }
    if (best !== undefined) return best;
  }
  return undefined;
}

function shown(lines: readonly string[]): string {
  const clipped = lines
    .slice(0, SHOWN_LINES)
    .map((l) => `    ${l.length > SHOWN_LINE_CHARS ? `${l.slice(0, SHOWN_LINE_CHARS)}…` : l}`);
  if (lines.length > SHOWN_LINES) clipped.push(`    … (${lines.length - SHOWN_LINES} more lines)`);
  return clipped.join("\n");
}

/** `file` with `hunks` applied, and the lines they added and removed. */
function applyHunks(file: TextFile, hunks: readonly Hunk[], quoted: string) {
  const { lines } = file;
  const edits: { at: number; remove: number; insert: string[] }[] = [];
  let finalNewline = file.finalNewline;
  let cursor = 0;
  for (const [n, hunk] of hunks.entries()) {
    const fail = (what: string) =>
      new PatchError(
        `${quoted}: hunk ${n + 1} of ${hunks.length}${hunk.header ? ` (${hunk.header})` : ""} ` +
          `did not apply: ${what}`,
      );
    let from = cursor;
    for (const anchor of hunk.anchors) {
      const anchorAt = seek(lines, [anchor], from, undefined, false);
      if (anchorAt === undefined) throw fail(`its @@ line was not found:\n${shown([anchor])}`);
      from = anchorAt + 1;
    }
    let { oldLines, newLines, contextOf } = hunk;
    const hint = hunk.hintLine === undefined ? undefined : hunk.hintLine - 1;
    let at = oldLines.length > 0 ? seek(lines, oldLines, from, hint, hunk.atEnd) : undefined;
    // Blank lines at a hunk's end may be spacing of the patch rather than blank lines of the file.
    if (at === undefined && hunk.blankTail > 0) {
      oldLines = oldLines.slice(0, -hunk.blankTail);
      newLines = newLines.slice(0, -hunk.blankTail);
      contextOf = contextOf.slice(0, -hunk.blankTail);
      if (oldLines.length > 0) at = seek(lines, oldLines, from, hint, hunk.atEnd);
    }
    if (oldLines.length === 0) {
      // Pure insertion: after line `-l` of a unified header, after the @@ line, or at the end.
      const wanted = hunk.hintLine ?? (hunk.anchors.length > 0 ? from : lines.length);
      at = Math.min(Math.max(wanted, from), lines.length);
    }
    if (at === undefined) {
      const start = from > 0 ? ` (searched from line ${from + 1})` : "";
      throw fail(`these lines were not found${start}:\n${shown(hunk.oldLines)}`);
    }
    if (at + oldLines.length === lines.length) finalNewline = !hunk.newMissingFinalNewline;
    // Context lines keep the file's own spelling (they may differ in whitespace from the patch).
    const base = at;
    const insert = newLines.map((text, k) => {
      const old = contextOf[k];
      return old === undefined ? text : (lines[base + old] as string);
    });
    edits.push({ at, remove: oldLines.length, insert });
    cursor = at + oldLines.length;
  }
  const result = [...lines];
  for (const edit of edits.reverse()) result.splice(edit.at, edit.remove, ...edit.insert);
  return {
    text: joinText({ ...file, lines: result, finalNewline }),
    added: hunks.reduce((sum, h) => sum + h.added, 0),
    removed: hunks.reduce((sum, h) => sum + h.removed, 0),
  };
}

/** A file's content and mode as the patch sees it; null when it does not exist. */
interface FileState {
  text: string;
  mode: number | undefined;
}

/** The files a patch touches: read once from disk, then changed in memory only. */
class Overlay {
  private readonly states = new Map<string, FileState | null>();
  /** Paths that existed on disk, so a final null means "delete". */
  private readonly onDisk = new Set<string>();

  async get(abs: string, requested: string): Promise<FileState | null> {
    if (this.states.has(abs)) return this.states.get(abs) ?? null;
    const quoted = JSON.stringify(requested);
    const stats = await stat(abs).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return undefined;
      throw err;
    });
    let state: FileState | null = null;
    if (stats) {
      if (stats.isDirectory()) throw new PatchError(`${quoted} is a directory`);
      if (!stats.isFile()) throw new PatchError(`${quoted} is not a regular file`);
      if (stats.size > MAX_FILE_BYTES) {
        throw new PatchError(`${quoted} is too large to patch (${stats.size} bytes)`);
      }
      const buf = await readFile(abs);
      if (buf.includes(0)) throw new PatchError(`${quoted} is a binary file`);
      if (!isUtf8(buf)) throw new PatchError(`${quoted} is not UTF-8 text`);
      state = { text: buf.toString("utf8"), mode: stats.mode & PERMISSION_BITS };
      this.onDisk.add(abs);
    }
    this.states.set(abs, state);
    return state;
  }

  set(abs: string, state: FileState | null): void {
    this.states.set(abs, state);
  }

  /** Final contents to write, and existing files to remove. */
  outcome(): { writes: [string, FileState][]; deletes: string[] } {
    const writes: [string, FileState][] = [];
    const deletes: string[] = [];
    for (const [abs, state] of this.states) {
      if (state) writes.push([abs, state]);
      else if (this.onDisk.has(abs)) deletes.push(abs);
    }
    return { writes, deletes };
  }
}

function lineCount(text: string): number {
  return text === "" ? 0 : splitText(text).lines.length;
}

/** Checks `op` against the overlay and records its effect there. */
async function plan(op: FileOp, files: Overlay, root: string): Promise<PatchedFile> {
  const quoted = JSON.stringify(op.path);
  const abs = await resolveInWorkspace(root, op.path);
  const current = await files.get(abs, op.path);
  const rel = toWorkspacePath(root, abs);
  if (op.kind === "add") {
    if (current) {
      throw new PatchError(`cannot add ${quoted}: it already exists (update or delete it instead)`);
    }
    const text = joinText({
      lines: op.lines,
      finalNewline: !op.missingFinalNewline,
      crlf: false,
      bom: false,
    });
    files.set(abs, { text, mode: undefined });
    return { path: rel, action: "add", added_lines: op.lines.length, removed_lines: 0 };
  }
  if (!current) throw new PatchError(`cannot ${op.kind} ${quoted}: it does not exist`);
  if (op.kind === "delete") {
    files.set(abs, null);
    return { path: rel, action: "delete", added_lines: 0, removed_lines: lineCount(current.text) };
  }
  const { text, added, removed } =
    op.hunks.length === 0
      ? { text: current.text, added: 0, removed: 0 }
      : applyHunks(splitText(current.text), op.hunks, quoted);
  if (op.moveTo === undefined) {
    files.set(abs, { text, mode: current.mode });
    return { path: rel, action: "update", added_lines: added, removed_lines: removed };
  }
  const target = await resolveInWorkspace(root, op.moveTo);
  if (target !== abs) {
    if (await files.get(target, op.moveTo)) {
      throw new PatchError(`cannot move ${quoted} to ${JSON.stringify(op.moveTo)}: it exists`);
    }
    files.set(abs, null);
  }
  files.set(target, { text, mode: current.mode });
  return {
    path: toWorkspacePath(root, target),
    action: "move",
    from: rel,
    added_lines: added,
    removed_lines: removed,
  };
}

/**
 * Writes every new content to a temp file beside its target; returns [temp, target] pairs.
 * `progress.path` names the file being written, for the error message.
 */
async function stage(
  writes: [string, FileState][],
  root: string,
  progress: { path: string },
): Promise<[string, string][]> {
  const staged: [string, string][] = [];
  try {
    for (const [abs, state] of writes) {
      progress.path = toWorkspacePath(root, abs);
      await mkdir(path.dirname(abs), { recursive: true });
      const target = await writeTarget(abs);
      staged.push([await stageBeside(target, state.text, state.mode), target]);
    }
    return staged;
  } catch (err) {
    await Promise.all(staged.map(([temp]) => unlink(temp).catch(() => undefined)));
    throw err;
  }
}

export const applyPatchTool: Tool<ApplyPatchArgs> = {
  name: "apply_patch",
  description:
    "Edit workspace text files with a patch: add, update (by hunks of context, - and + lines), " +
    "move or delete files. Accepts the Codex apply_patch format or a unified diff. Hunks are " +
    "found by their context lines (line numbers are only hints), so include 2-3 unchanged lines " +
    "around each change. All or nothing: if any hunk does not apply, no file is changed.",
  version: "1",
  kind: "mutating",
  family: "fs",
  policy: { idempotent: false },
  input: ApplyPatchInput,
  async run(args, ctx) {
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    if (args.patch.includes("\0")) {
      return failure("the patch contains a NUL byte; apply_patch only edits text files");
    }
    let ops: FileOp[];
    try {
      ops = parsePatch(args.patch).ops;
    } catch (err) {
      if (err instanceof PatchSyntaxError) return failure(`invalid patch: ${err.message}`);
      throw err;
    }
    const root = ctx.workspaceRoot;
    const files = new Overlay();
    const changes: PatchedFile[] = [];
    /** The file being worked on, as the patch names it, for system errors. */
    const progress = { path: "" };
    try {
      for (const op of ops) {
        if (ctx.signal.aborted) return failure(ABORTED_ERROR);
        progress.path = op.path;
        changes.push(await plan(op, files, root));
      }
      if (ctx.signal.aborted) return failure(ABORTED_ERROR);
      const { writes, deletes } = files.outcome();
      const staged = await stage(writes, root, progress);
      // Past this point nothing is checked any more: the renames and unlinks fail only if the
      // workspace changes under us.
      for (const [temp, target] of staged) {
        progress.path = toWorkspacePath(root, target);
        await rename(temp, target);
      }
      for (const abs of deletes) {
        progress.path = toWorkspacePath(root, abs);
        await unlink(abs);
      }
      return { ok: true, data: { files: changes } };
    } catch (err) {
      if (err instanceof PatchError || err instanceof WorkspaceError) {
        return failure(`${err.message}; nothing was changed`);
      }
      return failureFrom(err, progress.path);
    }
  },
};
