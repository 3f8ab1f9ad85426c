/**
 * The walk behind `search_content`: visits the files under a starting point and keeps the lines
 * that match. It runs inside the search worker (`search-worker.ts`), never on the main event loop,
 * so a pathological regex or glob stalls only that thread, which the caller terminates.
 *
 * Invariants:
 * - the walk never follows symlinks (so it cannot loop or leave the workspace) and skips `.git`,
 *   `node_modules` and the commands' temp folder `.tmp` at the root (unless the search starts
 *   inside one of them);
 * - cost is bounded: at most `MAX_FILES_SEARCHED` files are opened and `MAX_ENTRIES_SEEN` names
 *   looked at, files over `MAX_FILE_BYTES` and binary files (a NUL byte in the first
 *   `BINARY_SNIFF_BYTES`) are skipped, and at most `maxResults` matches are kept; `truncated`
 *   says when a bound stopped the search while there was more to look at;
 * - files are visited in tree order (siblings by name), so results are stable;
 * - a returned line is at most `MAX_LINE_CHARS` characters, cut around the match.
 */
import { constants, type Dirent } from "node:fs";
import { open, readdir } from "node:fs/promises";
import path from "node:path";
import { toWorkspacePath } from "./workspace.js";

export const MAX_FILES_SEARCHED = 5_000;
/** Names looked at, searched or not (a file_pattern can pass over many files). */
const MAX_ENTRIES_SEEN = 100_000;
const MAX_FILE_BYTES = 1024 * 1024;
const BINARY_SNIFF_BYTES = 8 * 1024;
const MAX_LINE_CHARS = 300;
/** When a long line is cut, this many characters before the match are kept. */
const LEAD_CHARS = 100;
const SKIPPED_DIRS = new Set([".git", "node_modules"]);
const ROOT_TEMP_DIR = ".tmp";

export interface SearchMatch {
  /** Relative to the workspace root, "/"-separated. */
  path: string;
  /** 1-based. */
  line: number;
  text: string;
  before?: string[];
  after?: string[];
}

/** One search, as sent to the worker (structured-cloned: plain data and RegExps only). */
export interface SearchJob {
  /** The workspace root. */
  root: string;
  /** Absolute, already confined to the workspace. */
  start: string;
  /** `start` is a folder to walk (else a file to search). */
  startIsDir: boolean;
  /** Without the `g` or `y` flag: `exec` must not carry state from one line to the next. */
  query: RegExp;
  /** Anchored; tested against the base name, or the workspace path when `filterByPath`. */
  fileFilter?: RegExp;
  filterByPath: boolean;
  maxResults: number;
  contextLines: number;
}

export interface SearchResult {
  matches: SearchMatch[];
  filesSearched: number;
  truncated: boolean;
}

/** What the worker posts back: the result, or the error that stopped the search. */
export type SearchReply =
  | { type: "done"; result: SearchResult }
  | { type: "failed"; error: { name: string; message: string; code?: string; syscall?: string } };

/** `line` cut to `MAX_LINE_CHARS`, keeping the part around `at` (the match's index). */
function clip(line: string, at = 0): string {
  if (line.length <= MAX_LINE_CHARS) return line;
  const start = Math.max(0, Math.min(at - LEAD_CHARS, line.length - MAX_LINE_CHARS));
  const end = start + MAX_LINE_CHARS;
  return `${start > 0 ? "…" : ""}${line.slice(start, end)}${end < line.length ? "…" : ""}`;
}

/** The lines of a searchable text file, or undefined for a file to skip. */
async function textLines(file: string): Promise<string[] | undefined> {
  // O_NONBLOCK so that a FIFO cannot hang the open before fstat gets to skip it.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || stats.size > MAX_FILE_BYTES) return undefined;
    const buf = await handle.readFile();
    if (buf.subarray(0, BINARY_SNIFF_BYTES).includes(0)) return undefined;
    const lines = buf.toString("utf8").split(/\r?\n/);
    if (lines[lines.length - 1] === "") lines.pop();
    return lines;
  } finally {
    await handle.close();
  }
}

function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * Runs `job` to the end. Throws only when the starting folder cannot be read (a system error,
 * with its `code` and `syscall`); an unreadable file or subfolder below it is just skipped.
 */
export async function runSearch(job: SearchJob): Promise<SearchResult> {
  const search = new Search(job);
  if (job.startIsDir) await search.walk(job.start, true);
  else await search.searchFile(job.start);
  const { matches, filesSearched, truncated } = search;
  return { matches, filesSearched, truncated };
}

/** One search: its bounds, what it found so far, and the walk that feeds it files. */
class Search {
  readonly matches: SearchMatch[] = [];
  filesSearched = 0;
  entriesSeen = 0;
  /** A bound stopped the search while there was more to look at. */
  truncated = false;
  private readonly skippedRootTemp: string;

  constructor(private readonly job: SearchJob) {
    this.skippedRootTemp = path.join(path.resolve(job.root), ROOT_TEMP_DIR);
  }

  /** Searches the files under `dir`, depth first in name order; false once a bound is hit. */
  async walk(dir: string, isStart: boolean): Promise<boolean> {
    let dirents: Dirent[];
    try {
      dirents = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isStart) throw err;
      return true; // an unreadable or vanished subfolder is just not searched
    }
    dirents.sort(byName);
    for (const dirent of dirents) {
      if (++this.entriesSeen > MAX_ENTRIES_SEEN) return this.stop();
      const abs = path.join(dir, dirent.name);
      // Symlinks are neither files nor folders to a Dirent: they are never followed.
      if (dirent.isDirectory()) {
        if (SKIPPED_DIRS.has(dirent.name) || abs === this.skippedRootTemp) continue;
        if (!(await this.walk(abs, false))) return false;
      } else if (dirent.isFile() && this.wanted(abs)) {
        if (!(await this.searchFile(abs))) return false;
      }
    }
    return true;
  }

  /** Searches one file; false once a bound is hit. */
  async searchFile(file: string): Promise<boolean> {
    if (this.filesSearched === MAX_FILES_SEARCHED) return this.stop();
    const lines = await textLines(file).catch(() => undefined); // vanished or unreadable
    this.filesSearched++;
    if (lines === undefined) return true;
    const { contextLines: around, maxResults, query } = this.job;
    const rel = toWorkspacePath(this.job.root, file);
    for (const [i, line] of lines.entries()) {
      const found = query.exec(line);
      if (found === null) continue;
      if (this.matches.length === maxResults) return this.stop();
      const match: SearchMatch = { path: rel, line: i + 1, text: clip(line, found.index) };
      if (around > 0) {
        match.before = lines.slice(Math.max(0, i - around), i).map((l) => clip(l));
        match.after = lines.slice(i + 1, i + 1 + around).map((l) => clip(l));
      }
      this.matches.push(match);
    }
    return true;
  }

  private wanted(file: string): boolean {
    const { fileFilter, filterByPath, root } = this.job;
    if (!fileFilter) return true;
    const name = filterByPath ? toWorkspacePath(root, file) : path.basename(file);
    return fileFilter.test(name);
  }

  private stop(): false {
    this.truncated = true;
    return false;
  }
}
