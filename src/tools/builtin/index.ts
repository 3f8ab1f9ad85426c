/**
 * The built-in tools and the function specs the model is shown for them.
 *
 * Invariants:
 * - `BUILTIN_TOOLS` order is the order the model sees them in;
 * - a tool's spec is computed once and reused (it is sent on every model call); the JSON schema
 *   describes the tool's *input* side, so fields with defaults are optional for the model.
 */
import { z } from "zod";
import type { ToolSpec } from "../../llm/chat-stream.js";
import { executeCommandTool } from "./execute-command.js";
import { listFilesTool } from "./list-files.js";
import { readFileTool } from "./read-file.js";
import type { Tool } from "../tool.js";
import { writeFileTool } from "./write-file.js";

export const BUILTIN_TOOLS: readonly Tool[] = [
  listFilesTool,
  readFileTool,
  writeFileTool,
  executeCommandTool,
];

const specCache = new WeakMap<Tool, ToolSpec>();

function toolSpec(tool: Tool): ToolSpec {
  const cached = specCache.get(tool);
  if (cached) return cached;
  const { $schema: _dialect, ...parameters } = z.toJSONSchema(tool.input, {
    target: "draft-7",
    io: "input",
  });
  const spec: ToolSpec = {
    type: "function",
    function: { name: tool.name, description: tool.description, parameters },
  };
  specCache.set(tool, spec);
  return spec;
}

export function toolSpecs(tools: readonly Tool[]): ToolSpec[] {
  return tools.map(toolSpec);
}
