/**
 * The built-in tools, in the order the model sees them (builtin-source.ts makes them a tool
 * source; the registry builds their specs).
 */
import type { Tool } from "../tool.js";
import { applyPatchTool } from "./apply-patch.js";
import { executeCommandTool } from "./execute-command.js";
import { finalResponseTool } from "./final-response.js";
import { listFilesTool } from "./list-files.js";
import { readFileTool } from "./read-file.js";
import { searchContentTool } from "./search-content.js";
import { webFetchTool } from "./web-fetch.js";
import { writeFileTool } from "./write-file.js";

export const BUILTIN_TOOLS: readonly Tool[] = [
  listFilesTool,
  readFileTool,
  searchContentTool,
  writeFileTool,
  applyPatchTool,
  executeCommandTool,
  webFetchTool,
  finalResponseTool,
];
