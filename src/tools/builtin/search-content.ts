/**
 * `search_content`: lines of the workspace's text files that contain a string or match a regex.
 *
 * The walk and the matching (`search-walk.ts`) run in a worker thread, one per call, so that a
 * pathological regex (catastrophic backtracking) or glob cannot stall the event loop: the worker
 * is terminated when `ctx.signal` aborts or after `SEARCH_DEADLINE_MS`, whichever comes first,
 * and always once the call is over. The bounds of the walk (files, entries, file size, results,
 * line length) are described there.
 *
 * Invariants:
 * - invalid input (regex, file_pattern, path) is an `{ ok: false }` result, never a throw;
 * - no worker outlives its call.
 */
import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { z } from "zod";
import type { Tool, ToolOutput } from "../tool.js";
import { ABORTED_ERROR, failure, failureFrom } from "./result.js";
import type { SearchJob, SearchReply } from "./search-walk.js";
import { resolveInWorkspace } from "./workspace.js";

export { MAX_FILES_SEARCHED } from "./search-walk.js";

/** A search still running after this long is stopped (its worker terminated). */
export const SEARCH_DEADLINE_MS = 30_000;
/** Heap of a search worker: far above what the bounded walk needs, far below the process's. */
const WORKER_MAX_OLD_GENERATION_MB = 256;

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

/** The file filter, or the reason `file_pattern` is invalid (e.g. a range out of order). */
function compileFilePattern(pattern: string): RegExp | string {
  try {
    return globToRegExp(pattern);
  } catch (err) {
    return `invalid file_pattern ${JSON.stringify(pattern)}: ${(err as Error).message}`;
  }
}

/** How a search in a worker ended; `failed` carries the error the walk threw. */
export type SearchOutcome =
  | SearchReply
  | { type: "aborted" }
  | { type: "deadline" }
  | { type: "out_of_memory" };

/**
 * A worker running `search-worker`: the compiled `.js` next to this module, or, when running from
 * the TypeScript sources under tsx, the `.ts` one. tsx's `--import` hooks do not reach worker
 * threads on Node 20, so such a worker registers tsx itself before loading its entry.
 */
function startSearchWorker(job: SearchJob): Worker {
  const options = {
    workerData: job,
    resourceLimits: { maxOldGenerationSizeMb: WORKER_MAX_OLD_GENERATION_MB },
  };
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./search-worker.js", here), options);
  // Eval code is CommonJS: it registers tsx's require hook (resolved from here) and requires the
  // entry, which tsx compiles to CommonJS, as it may have done with this very module.
  const tsx = createRequire(here).resolve("tsx/cjs/api");
  const entry = fileURLToPath(new URL("./search-worker.ts", here));
  const code = `require(${JSON.stringify(tsx)}).register(); require(${JSON.stringify(entry)});`;
  // No inherited flags: a parent's `--import tsx` would only load tsx a second time.
  return new Worker(code, { ...options, eval: true, execArgv: [] });
}

/**
 * Runs `job` in a fresh worker, bounded by `signal` and `deadlineMs`. Settles only once the
 * worker is gone. Rejects when the worker fails for a reason other than running out of memory
 * (a bug, such as a missing worker module).
 */
export function searchInWorker(
  job: SearchJob,
  signal: AbortSignal,
  deadlineMs = SEARCH_DEADLINE_MS,
): Promise<SearchOutcome> {
  if (signal.aborted) return Promise.resolve({ type: "aborted" });
  return new Promise<SearchOutcome>((resolve, reject) => {
    let worker: Worker;
    try {
      worker = startSearchWorker(job);
    } catch (err) {
      reject(err);
      return;
    }
    let settled = false;
    const settle = (outcome: SearchOutcome | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      const done = () => (outcome instanceof Error ? reject(outcome) : resolve(outcome));
      worker.terminate().then(done, done);
    };
    const onAbort = () => settle({ type: "aborted" });
    const timer = setTimeout(() => settle({ type: "deadline" }), deadlineMs);
    signal.addEventListener("abort", onAbort, { once: true });
    worker.once("message", (reply: SearchReply) => settle(reply));
    // Stays attached after settling: an unheard "error" event would be thrown.
    worker.on("error", (err: NodeJS.ErrnoException) =>
      settle(err.code === "ERR_WORKER_OUT_OF_MEMORY" ? { type: "out_of_memory" } : err),
    );
    worker.on("messageerror", (err) => settle(err));
    worker.once("exit", (code) =>
      settle(new Error(`search worker exited with code ${code} before answering`)),
    );
  });
}

/** The error the walk threw, as `failureFrom` knows it (a system error keeps code and syscall). */
function revive(error: Extract<SearchReply, { type: "failed" }>["error"]): Error {
  return Object.assign(new Error(error.message), error);
}

function outcomeToOutput(outcome: SearchOutcome, requestedPath: string): ToolOutput {
  switch (outcome.type) {
    case "done": {
      const { matches, filesSearched, truncated } = outcome.result;
      return { ok: true, data: { matches, files_searched: filesSearched, truncated }, truncated };
    }
    case "failed":
      return failureFrom(revive(outcome.error), requestedPath);
    case "aborted":
      return failure(ABORTED_ERROR);
    case "deadline":
      return failure(
        `search took longer than ${SEARCH_DEADLINE_MS / 1000} s (the pattern may backtrack ` +
          "catastrophically); use a simpler pattern or a narrower path",
      );
    case "out_of_memory":
      return failure("search ran out of memory; use a narrower path or file_pattern");
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
    const pattern = args.file_pattern;
    const fileFilter = pattern === undefined ? undefined : compileFilePattern(pattern);
    if (typeof fileFilter === "string") return failure(fileFilter);
    let job: SearchJob;
    try {
      // The starting point may be a symlink (resolveInWorkspace confined it); below it, none is
      // followed. A file named explicitly is searched whatever file_pattern says.
      const start = await resolveInWorkspace(ctx.workspaceRoot, args.path);
      const stats = await stat(start);
      if (!stats.isDirectory() && !stats.isFile()) {
        return failure(`${JSON.stringify(args.path)} is not a file or folder`);
      }
      job = {
        root: ctx.workspaceRoot,
        start,
        startIsDir: stats.isDirectory(),
        query,
        filterByPath: pattern?.includes("/") ?? false,
        maxResults: args.max_results,
        contextLines: args.context_lines,
      };
      if (fileFilter) job.fileFilter = fileFilter;
    } catch (err) {
      return failureFrom(err, args.path);
    }
    const outcome = await searchInWorker(job, ctx.signal);
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    return outcomeToOutput(outcome, args.path);
  },
};
