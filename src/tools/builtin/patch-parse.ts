/**
 * Parsing the two patch formats `apply_patch` accepts into one list of file operations:
 * - the Codex format (`*** Begin Patch` … `*** End Patch`, with `*** Add File:`,
 *   `*** Delete File:`, `*** Update File:` + optional `*** Move to:`, and `@@` hunks);
 * - unified diffs (`--- a/x` / `+++ b/x`, `@@ -l,n +l,n @@` hunks, `/dev/null` for a missing
 *   side; `diff --git` headers with `rename from` / `rename to` are understood too).
 *
 * Invariants:
 * - parsing is pure: no file is looked at; paths come out exactly as written (prefixes `a/` and
 *   `b/` of unified diffs removed), to be confined by the caller;
 * - a problem is reported as `PatchSyntaxError` naming the 1-based patch line;
 * - hunk line counts in unified headers are not trusted (models get them wrong): a hunk runs
 *   until the next header; only the start line is kept, as a hint of where to look.
 */

export type PatchFormat = "codex" | "unified";

export interface Hunk {
  /** The hunk's header line as written ("@@ -3,4 +3,5 @@"), "" for an implicit first hunk. */
  header: string;
  /** Codex `@@ <text>` lines: found one after the other first; the hunk applies after them
   * (several narrow down a spot, e.g. a class, then a method of it). */
  anchors: string[];
  /** Unified `-l`: 1-based line of the old file where the hunk starts (the line after which to
   * insert when it removes nothing). */
  hintLine?: number;
  oldLines: string[];
  newLines: string[];
  /** For each new line that is a context line, its index in `oldLines` (so the file's own
   * spelling of it can be kept); undefined for an added line. */
  contextOf: (number | undefined)[];
  /** Lines only on the new side ("+"). */
  added: number;
  /** Lines only on the old side ("-"). */
  removed: number;
  /** Trailing context lines that were blank in the patch (maybe just padding, see the matcher). */
  blankTail: number;
  /** Codex `*** End of File`: the hunk must match at the end of the file. */
  atEnd: boolean;
  /** Unified `\ No newline at end of file` after the new side's last line. */
  newMissingFinalNewline: boolean;
}

export type FileOp =
  | { kind: "add"; path: string; lines: string[]; missingFinalNewline: boolean }
  | { kind: "delete"; path: string }
  | { kind: "update"; path: string; moveTo?: string; hunks: Hunk[] };

export interface ParsedPatch {
  format: PatchFormat;
  ops: FileOp[];
}

export class PatchSyntaxError extends Error {
  override name = "PatchSyntaxError";
}

const BEGIN = "*** Begin Patch";
const END = "*** End Patch";
const ADD = "*** Add File: ";
const DELETE = "*** Delete File: ";
const UPDATE = "*** Update File: ";
const MOVE = "*** Move to: ";
const END_OF_FILE = "*** End of File";
const UNIFIED_HUNK = /^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@/;
const DEV_NULL = "/dev/null";

function syntaxError(lineIndex: number, message: string): PatchSyntaxError {
  return new PatchSyntaxError(`patch line ${lineIndex + 1}: ${message}`);
}

function newHunk(header: string): Hunk {
  return {
    header,
    anchors: [],
    oldLines: [],
    newLines: [],
    contextOf: [],
    added: 0,
    removed: 0,
    blankTail: 0,
    atEnd: false,
    newMissingFinalNewline: false,
  };
}

/**
 * Adds one body line (" x", "-x", "+x", or "" for a blank context line) to `hunk`; false when
 * the line is not a hunk line.
 */
function addHunkLine(hunk: Hunk, line: string): boolean {
  const marker = line[0];
  const text = line.slice(1);
  if (marker === "+") {
    hunk.newLines.push(text);
    hunk.contextOf.push(undefined);
    hunk.added++;
  } else if (marker === "-") {
    hunk.oldLines.push(text);
    hunk.removed++;
  } else if (marker === " " || line === "") {
    hunk.contextOf.push(hunk.oldLines.length);
    hunk.oldLines.push(text);
    hunk.newLines.push(text);
  } else return false;
  hunk.blankTail = line === "" ? hunk.blankTail + 1 : 0;
  return true;
}

function hasChanges(hunk: Hunk): boolean {
  return hunk.oldLines.length > 0 || hunk.newLines.length > 0;
}

/** The path after a Codex marker such as "*** Add File: ". */
function opPath(line: string, marker: string, lineIndex: number): string {
  const p = line.slice(marker.length).trim();
  if (p === "") throw syntaxError(lineIndex, `"${marker.trim()}" without a path`);
  return p;
}

function parseCodex(lines: string[], begin: number): FileOp[] {
  let end = lines.length - 1;
  while (end > begin && lines[end]?.trim() === "") end--;
  if (lines[end]?.trim() !== END) {
    throw syntaxError(end, `the patch must end with "${END}" (was it cut short?)`);
  }
  const ops: FileOp[] = [];
  let i = begin + 1;
  const at = (index: number) => lines[index] as string;
  while (i < end) {
    const line = at(i);
    if (line.trim() === "") {
      i++;
    } else if (line.startsWith(ADD)) {
      const addPath = opPath(line, ADD, i);
      const content: string[] = [];
      // Blank lines between this file and the next operation are layout, not content.
      let blankRun = 0;
      for (i++; i < end && !at(i).startsWith("*** "); i++) {
        const body = at(i);
        if (!body.startsWith("+") && body !== "") {
          throw syntaxError(i, `in "${line}", every line must start with "+"`);
        }
        content.push(body.slice(1));
        blankRun = body === "" ? blankRun + 1 : 0;
      }
      content.splice(content.length - blankRun);
      ops.push({
        kind: "add",
        path: addPath,
        lines: content,
        missingFinalNewline: false,
      });
    } else if (line.startsWith(DELETE)) {
      ops.push({ kind: "delete", path: opPath(line, DELETE, i) });
      i++;
    } else if (line.startsWith(UPDATE)) {
      const op: Extract<FileOp, { kind: "update" }> = {
        kind: "update",
        path: opPath(line, UPDATE, i),
        hunks: [],
      };
      i++;
      if (i < end && at(i).startsWith(MOVE)) {
        op.moveTo = opPath(at(i), MOVE, i);
        i++;
      }
      let hunk: Hunk | undefined;
      for (; i < end; i++) {
        const body = at(i);
        if (body.trim() === END_OF_FILE) {
          if (!hunk) throw syntaxError(i, `"${END_OF_FILE}" before any hunk line`);
          hunk.atEnd = true;
        } else if (body.startsWith("@@")) {
          // A "@@" right after another one adds to its anchors instead of starting a hunk.
          if (!hunk || hasChanges(hunk)) {
            hunk = newHunk(body);
            op.hunks.push(hunk);
          }
          const anchor = body.slice(2).trim();
          if (anchor !== "") hunk.anchors.push(anchor);
        } else if (body.startsWith("*** ")) {
          break;
        } else {
          // Codex lets the first hunk of a file start without its "@@" line.
          if (!hunk) {
            hunk = newHunk("");
            op.hunks.push(hunk);
          }
          if (!addHunkLine(hunk, body)) {
            throw syntaxError(
              i,
              `in "${line}", a hunk line must start with " ", "-" or "+" (got ${JSON.stringify(body.slice(0, 40))})`,
            );
          }
        }
      }
      if (op.hunks.length === 0 && op.moveTo === undefined) {
        throw syntaxError(i - 1, `"${line}" has no hunks`);
      }
      for (const h of op.hunks) {
        if (!hasChanges(h)) throw syntaxError(i - 1, `"${line}" has an empty hunk`);
      }
      ops.push(op);
    } else {
      throw syntaxError(
        i,
        `expected "${ADD}", "${DELETE}", "${UPDATE}" or "${END}", got ${JSON.stringify(line.slice(0, 60))}`,
      );
    }
  }
  return ops;
}

/** A path from a `---` / `+++` line: timestamp and git's `a/` / `b/` prefix removed. */
function unifiedPath(raw: string, prefix: "a/" | "b/"): string | undefined {
  let p = raw.split("\t")[0]?.trim() ?? "";
  if (p.startsWith('"') && p.endsWith('"') && p.length > 1) p = p.slice(1, -1);
  if (p === DEV_NULL) return undefined;
  return p.startsWith(prefix) ? p.slice(prefix.length) : p;
}

function parseUnified(lines: string[]): FileOp[] {
  const ops: FileOp[] = [];
  let i = 0;
  const at = (index: number) => lines[index] as string;
  const startsFile = (index: number) =>
    at(index).startsWith("diff --git ") ||
    (at(index).startsWith("--- ") && (lines[index + 1] ?? "").startsWith("+++ "));
  while (i < lines.length) {
    if (!startsFile(i)) {
      i++; // commit messages, "index …" lines and other chatter around the diffs
      continue;
    }
    let oldPath: string | undefined;
    let newPath: string | undefined;
    let renameFrom: string | undefined;
    let renameTo: string | undefined;
    let sawHeaders = false;
    const headerLine = i;
    if (at(i).startsWith("diff --git ")) {
      for (i++; i < lines.length && !at(i).startsWith("--- ") && !startsFile(i); i++) {
        if (at(i).startsWith("rename from ")) renameFrom = at(i).slice(12).trim();
        if (at(i).startsWith("rename to ")) renameTo = at(i).slice(10).trim();
      }
    }
    if (i < lines.length && at(i).startsWith("--- ") && (lines[i + 1] ?? "").startsWith("+++ ")) {
      oldPath = unifiedPath(at(i).slice(4), "a/");
      newPath = unifiedPath(at(i + 1).slice(4), "b/");
      sawHeaders = true;
      i += 2;
    }
    const hunks: Hunk[] = [];
    let hunk: Hunk | undefined;
    for (; i < lines.length && !startsFile(i); i++) {
      const body = at(i);
      if (body.startsWith("@@")) {
        hunk = newHunk(body);
        const numbers = UNIFIED_HUNK.exec(body);
        if (numbers) hunk.hintLine = Number(numbers[1]);
        hunks.push(hunk);
      } else if (!hunk) {
        throw syntaxError(
          i,
          `expected a "@@" hunk header, got ${JSON.stringify(body.slice(0, 60))}`,
        );
      } else if (body.startsWith("\\")) {
        // "\ No newline at end of file", about the line just before; only the new side's final
        // newline matters here (the old side's shows in the file itself).
        if (at(i - 1).startsWith("+") || at(i - 1).startsWith(" ")) {
          hunk.newMissingFinalNewline = true;
        }
      } else if (!addHunkLine(hunk, body)) {
        // Chatter after the last hunk (a closing code fence, a note) ends the file's diff; a
        // stray line with more hunks after it is a broken diff.
        for (let j = i + 1; j < lines.length && !startsFile(j); j++) {
          if (at(j).startsWith("@@")) {
            throw syntaxError(i, `not a hunk line: ${JSON.stringify(body.slice(0, 60))}`);
          }
        }
        break;
      }
    }
    if (!sawHeaders && renameFrom === undefined) {
      throw syntaxError(headerLine, "a diff without --- / +++ lines or a rename");
    }
    const from = sawHeaders ? oldPath : renameFrom;
    const to = sawHeaders ? newPath : renameTo;
    for (const h of hunks) {
      if (!hasChanges(h)) throw syntaxError(headerLine, "an empty hunk");
    }
    if (from === undefined && to === undefined) {
      throw syntaxError(headerLine, `both sides of the diff are ${DEV_NULL}`);
    }
    if (from === undefined) {
      const added = hunks.flatMap((h) => h.newLines);
      const last = hunks[hunks.length - 1];
      ops.push({
        kind: "add",
        path: to as string,
        lines: added,
        missingFinalNewline: last?.newMissingFinalNewline ?? false,
      });
    } else if (to === undefined) {
      ops.push({ kind: "delete", path: from });
    } else {
      const op: FileOp = { kind: "update", path: from, hunks };
      if (to !== from) op.moveTo = to;
      if (hunks.length === 0 && op.moveTo === undefined) {
        throw syntaxError(headerLine, `the diff of ${JSON.stringify(from)} has no hunks`);
      }
      ops.push(op);
    }
  }
  if (ops.length === 0) throw new PatchSyntaxError("no file changes found in the patch");
  return ops;
}

/** `lines` without a Markdown code fence around them (models often wrap patches in one). */
function unfenced(lines: string[]): string[] {
  const first = lines.findIndex((l) => l.trim() !== "");
  let last = lines.length - 1;
  while (last > first && lines[last]?.trim() === "") last--;
  const fenced = first !== -1 && lines[first]?.startsWith("```") && lines[last]?.trim() === "```";
  return fenced && last > first ? lines.slice(first + 1, last) : lines;
}

export function parsePatch(text: string): ParsedPatch {
  // Blank lines at the very end are never content: they would read as blank context lines.
  const lines = unfenced(
    text
      .trimEnd()
      .split("\n")
      .map((l) => (l.endsWith("\r") ? l.slice(0, -1) : l)),
  );
  const first = lines.findIndex((l) => l.trim() !== "");
  if (first !== -1 && lines[first]?.trim() === BEGIN) {
    return { format: "codex", ops: parseCodex(lines, first) };
  }
  const unified = lines.some(
    (l, i) =>
      l.startsWith("diff --git ") ||
      (l.startsWith("--- ") && (lines[i + 1] ?? "").startsWith("+++ ")),
  );
  if (unified) return { format: "unified", ops: parseUnified(lines) };
  throw new PatchSyntaxError(
    `not a patch: expected "${BEGIN}" on the first line, or a unified diff with --- / +++ lines`,
  );
}
