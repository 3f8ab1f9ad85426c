/**
 * `read_file`: a text file of the workspace, whole or a range of lines.
 *
 * Invariants:
 * - memory is bounded by `limits.readFileMaxBytes` whatever the file size: the file is streamed,
 *   lines are counted all the way (so `total_lines` is exact) and only the requested range is
 *   kept, up to the cap;
 * - a capped result ends on a line boundary when at least one whole line fits (else on a
 *   character boundary), and `end_line` names the last line returned;
 * - directories, non-regular files (a FIFO would block the read forever) and binary files (a NUL
 *   byte in the first `BINARY_SNIFF_BYTES`) are refused with ok:false.
 */
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { z } from "zod";
import type { Tool } from "../tool.js";
import { ABORTED_ERROR, failure, failureFrom } from "./result.js";
import { trimPartialEnd } from "./utf8.js";
import { resolveInWorkspace, toWorkspacePath } from "./workspace.js";

const BINARY_SNIFF_BYTES = 8 * 1024;
const READ_CHUNK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

const ReadFileInput = z
  .object({
    path: z.string().min(1).describe("File to read, relative to the workspace root."),
    start_line: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("First line to return, 1-based. Default 1."),
    end_line: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("Last line to return, inclusive. Default: the end of the file."),
  })
  .refine((a) => a.end_line === undefined || a.end_line >= (a.start_line ?? 1), {
    message: "end_line must be >= start_line",
    path: ["end_line"],
  });
type ReadFileArgs = z.infer<typeof ReadFileInput>;

/** Scan result: the kept bytes of the range and what was seen of the whole file. */
interface Scan {
  kept: Buffer;
  /** The range held more bytes than the cap. */
  capped: boolean;
  totalLines: number;
}

async function scanFile(
  file: string,
  firstLine: number,
  lastLine: number,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Scan | "directory" | "not_a_file" | "binary" | "aborted"> {
  // O_NONBLOCK so that opening a FIFO cannot hang before fstat gets to refuse it.
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await handle.stat();
    if (stats.isDirectory()) return "directory";
    if (!stats.isFile()) return "not_a_file";
    const chunk = Buffer.alloc(READ_CHUNK_BYTES);
    const kept: Buffer[] = [];
    let keptBytes = 0;
    let capped = false;
    let line = 1; // line of the next byte
    let position = 0;
    let lastByte = NEWLINE; // an empty file has 0 lines
    for (;;) {
      if (signal.aborted) return "aborted";
      const { bytesRead } = await handle.read(chunk, 0, READ_CHUNK_BYTES, position);
      if (bytesRead === 0) break;
      const buf = chunk.subarray(0, bytesRead);
      if (
        position < BINARY_SNIFF_BYTES &&
        buf.subarray(0, BINARY_SNIFF_BYTES - position).includes(0)
      ) {
        return "binary";
      }
      position += bytesRead;
      lastByte = buf[bytesRead - 1] as number;
      for (let i = 0; i < bytesRead; ) {
        const newline = buf.indexOf(NEWLINE, i);
        const end = newline === -1 ? bytesRead : newline + 1;
        if (line >= firstLine && line <= lastLine && !capped) {
          const room = maxBytes - keptBytes;
          const piece = buf.subarray(i, Math.min(end, i + room));
          // Copied: `chunk` is reused by the next read.
          kept.push(Buffer.from(piece));
          keptBytes += piece.length;
          capped = end - i > room;
        }
        if (newline !== -1) line++;
        i = end;
      }
    }
    const totalLines = line - 1 + (lastByte === NEWLINE ? 0 : 1);
    return { kept: Buffer.concat(kept), capped, totalLines };
  } finally {
    await handle.close();
  }
}

function countNewlines(buf: Buffer): number {
  let count = 0;
  for (let i = buf.indexOf(NEWLINE); i !== -1; i = buf.indexOf(NEWLINE, i + 1)) count++;
  return count;
}

export const readFileTool: Tool<ReadFileArgs> = {
  name: "read_file",
  description:
    "Read a text file of the workspace, optionally only lines start_line..end_line (1-based, " +
    "inclusive). Returns the content, the range returned and the file's total_lines. Long results " +
    "are cut at a size limit (`truncated` true; read on from end_line + 1). Refuses folders and " +
    "binary files.",
  version: "1",
  kind: "read_only",
  family: "fs",
  policy: { idempotent: true },
  input: ReadFileInput,
  async run(args, ctx) {
    if (ctx.signal.aborted) return failure(ABORTED_ERROR);
    const quoted = JSON.stringify(args.path);
    try {
      const file = await resolveInWorkspace(ctx.workspaceRoot, args.path);
      const startLine = args.start_line ?? 1;
      const scan = await scanFile(
        file,
        startLine,
        args.end_line ?? Number.POSITIVE_INFINITY,
        ctx.limits.readFileMaxBytes,
        ctx.signal,
      );
      if (scan === "aborted") return failure(ABORTED_ERROR);
      if (scan === "directory") {
        return failure(`${quoted} is a directory; use list_files to see its content`);
      }
      if (scan === "not_a_file") return failure(`${quoted} is not a regular file`);
      if (scan === "binary") return failure(`${quoted} is a binary file`);
      // Line 1 of an empty file is readable (as nothing); past that, a start beyond the end is a
      // mistake the model should hear about.
      if (startLine > Math.max(scan.totalLines, 1)) {
        return failure(
          `start_line ${startLine} is past the end of ${quoted} (${scan.totalLines} lines)`,
        );
      }
      let content = scan.kept;
      if (scan.capped) {
        const lastNewline = content.lastIndexOf(NEWLINE);
        content =
          lastNewline === -1 ? trimPartialEnd(content) : content.subarray(0, lastNewline + 1);
      }
      const endLine = scan.capped
        ? startLine + Math.max(countNewlines(content) - 1, 0)
        : Math.min(args.end_line ?? scan.totalLines, scan.totalLines);
      return {
        ok: true,
        data: {
          path: toWorkspacePath(ctx.workspaceRoot, file),
          content: content.toString("utf8"),
          start_line: startLine,
          end_line: endLine,
          total_lines: scan.totalLines,
          truncated: scan.capped,
        },
        truncated: scan.capped,
      };
    } catch (err) {
      return failureFrom(err, args.path);
    }
  },
};
