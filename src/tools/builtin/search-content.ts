/**
 * `search_content`: lines of the workspace's text files that contain a string or match a regex.
 *
 * Invariants:
 * - the walk never follows symlinks (so it cannot loop or leave the workspace) and skips `.git`,
 *   `node_modules` and the commands' temp folder `.tmp` at the root (unless the search starts
 *   inside one of them);
 * - cost is bounded: at most `MAX_FILES_SEARCHED` files are opened and `MAX_ENTRIES_SEEN` names
 *   looked at, files over `MAX_FILE_BYTES` and binary files (a NUL byte in the first
 *   `BINARY_SNIFF_BYTES`) are skipped, and at most `max_results` matches are kept; `truncated`
 *   says when a bound stopped the search while there was more to look at;
 * - files are visited in tree order (siblings by name), so results are stable;
 * - a returned line is at most `MAX_LINE_CHARS` characters, cut around the match.
 *
 * A regex runs on the event loop: a pathological pattern on a long line can stall it. Lines are
 * matched one by one, which keeps the usual backtracking cases small.
 */
import { constants, type Dirent } from "node:fs";
import { open, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import type { Tool } from "../tool.js";
import { ABORTED_ERROR, failure, failureFrom } from "./result.js";
import { resolveInWorkspace, toWorkspacePath } from "./workspace.js";

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

const SearchContentInput = z.object({
  query: z.string().min(1).describe("Text to look for (or a JavaScript regex when regex is true)."),
  path: z
    .string()
    .default(".")
    .describe('Folder (or file) to search, relative to the workspace root. Default "." (all).'),
  regex: z.boolean().default(false).describe("Treat query as a regular expression. Default false."),
  case_sensitive: z.boolean().default(false).describe("Match letter case exactly. Default false."),
  file_pattern: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Only search files whose name matches this glob ("*.ts", "*.{js,mjs}"); a glob with a "/" ' +
        '("src/**/*.md") is matched against the path from the workspace root.',
    ),
  max_results: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .describe("Stop after this many matching lines. Default 100."),
  context_lines: z
    .number()
    .int()
    .min(0)
    .max(5)
    .default(0)
    .describe("Lines of context to return before and after each match. Default 0."),
});
type SearchContentArgs = z.infer<typeof SearchContentInput>;

interface Match {
  /** Relative to the workspace root, "/"-separated. */
  path: string;
  /** 1-based. */
  line: number;
  text: string;
  before?: string[];
  after?: string[];
}

/**
 * A glob as an anchored RegExp: `*` and `?` stay within one path segment, `**` crosses segments
 * (`**\/` also matches no folder at all), `[...]` and `{a,b}` work as in shells.
 */
export function globToRegExp(glob: string): RegExp {
  let source = "";
  let braceDepth = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*") {
      if (glob[i + 1] !== "*") {
        source += "[^/]*";
        continue;
      }
      const slash = glob[i + 2] === "/";
      source += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "?") {
      source += "[^/]";
    } else if (c === "[" && glob.indexOf("]", i + 2) !== -1) {
      const end = glob.indexOf("]", i + 2);
      const body = glob
        .slice(i + 1, end)
        .replace(/^!/, "^")
        .replace(/[\\\]]/g, "\\$&");
      source += `[${body}]`;
      i = end;
    } else if (c === "{") {
      braceDepth++;
      source += "(?:";
    } else if (c === "}" && braceDepth > 0) {
      braceDepth--;
      source += ")";
    } else if (c === "," && braceDepth > 0) {
      source += "|";
    } else {
      source += c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
    }
  }
  // An unclosed "{" is taken literally by shells; here it just closes at the end.
  return new RegExp(`^${source}${")".repeat(braceDepth)}$`);
}

/** The search expression, or the reason it is invalid. */
function compileQuery(args: SearchContentArgs): RegExp | string {
  const flags = args.case_sensitive ? "" : "i";
  if (!args.regex) return new RegExp(args.query.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags);
  try {
    // Unicode mode first (for \p{…} and astral characters), then the lax legacy syntax that
    // accepts escapes such as "\-" which Unicode mode rejects.
    return new RegExp(args.query, `${flags}u`);
  } catch {
    try {
      return new RegExp(args.query, flags);
    } catch (err) {
      return `invalid regex: ${(err as Error).message}`;
    }
  }
}

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

/** One search: its bounds, what it found so far, and the walk that feeds it files. */
class Search {
  readonly matches: Match[] = [];
  filesSearched = 0;
  entriesSeen = 0;
  /** A bound stopped the search while there was more to look at. */
  truncated = false;
  private readonly fileFilter: RegExp | undefined;
  private readonly filterByPath: boolean;
  private readonly skippedRootTemp: string;

  constructor(
    private readonly root: string,
    private readonly query: RegExp,
    private readonly args: SearchContentArgs,
    private readonly signal: AbortSignal,
  ) {
    const pattern = args.file_pattern;
    this.fileFilter = pattern === undefined ? undefined : globToRegExp(pattern);
    this.filterByPath = pattern?.includes("/") ?? false;
    this.skippedRootTemp = path.join(path.resolve(root), ROOT_TEMP_DIR);
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
      if (this.signal.aborted) return false;
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
    const { context_lines: around, max_results: maxResults } = this.args;
    const rel = toWorkspacePath(this.root, file);
    for (const [i, line] of lines.entries()) {
      const found = this.query.exec(line);
      if (found === null) continue;
      if (this.matches.length === maxResults) return this.stop();
      const match: Match = { path: rel, line: i + 1, text: clip(line, found.index) };
      if (around > 0) {
        match.before = lines.slice(Math.max(0, i - around), i).map((l) => clip(l));
        match.after = lines.slice(i + 1, i + 1 + around).map((l) => clip(l));
      }
      this.matches.push(match);
    }
    return true;
  }

  private wanted(file: string): boolean {
    if (!this.fileFilter) return true;
    const name = this.filterByPath ? toWorkspacePath(this.root, file) : path.basename(file);
    return this.fileFilter.test(name);
  }

  private stop(): false {
    this.truncated = true;
    return false;
  }
}

export const searchContentTool: Tool<SearchContentArgs> = {
  name: "search_content",
  description:
    "Search the text files of the workspace for lines containing query (plain text, or a regex " +
    "when regex is true; case-insensitive unless case_sensitive). Returns path, line number and " +
    "text of each match, optionally with context lines. Skips .git, node_modules, binary and " +
    "large files; file_pattern narrows the files searched.",
  version: "1",
  kind: "read_only",
  family: "fs",
  policy: { idempotent: true },
  input: SearchContentInput,
  async run(args, ctx) {
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    const query = compileQuery(args);
    if (typeof query === "string") return failure(query);
    try {
      // The starting point may be a symlink (resolveInWorkspace confined it); below it, none is
      // followed. A file named explicitly is searched whatever file_pattern says.
      const start = await resolveInWorkspace(ctx.workspaceRoot, args.path);
      const stats = await stat(start);
      const search = new Search(ctx.workspaceRoot, query, args, ctx.signal);
      if (stats.isDirectory()) await search.walk(start, true);
      else if (stats.isFile()) await search.searchFile(start);
      else return failure(`${JSON.stringify(args.path)} is not a file or folder`);
      if (ctx.signal.aborted) return failure(ABORTED_ERROR);
      const { matches, filesSearched, truncated } = search;
      return { ok: true, data: { matches, files_searched: filesSearched, truncated }, truncated };
    } catch (err) {
      return failureFrom(err, args.path);
    }
  },
};
