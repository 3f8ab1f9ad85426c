/**
 * Body of `GET /v1/tools` (the tool catalogue), and its OpenAPI part. The registry builds its
 * catalogue entries in this shape, so this schema is their one definition.
 */
import { z } from "zod";
import { TOOL_KINDS } from "../tools/tool.js";

export const ToolViewSchema = z
  .object({
    name: z.string().describe("the name the model calls; use it (or display_name) in `tools`"),
    display_name: z.string().describe("built-in name, or `server@tool` for MCP tools"),
    description: z.string(),
    version: z.string(),
    kind: z.enum(TOOL_KINDS),
    source: z.string().describe("`builtin` or `mcp:<server>`"),
    idempotent: z.boolean().describe("transient failures are retried"),
    parallel_safe: z.boolean().describe("runs beside other calls of the round"),
    input_schema: z.record(z.string(), z.unknown()).describe("JSON schema of the arguments"),
    available: z.boolean(),
    unavailable_reason: z.string().optional(),
  })
  .meta({ id: "Tool" });
export type ToolView = z.infer<typeof ToolViewSchema>;

export const ToolSourceViewSchema = z
  .object({
    id: z.string(),
    tools: z.number().int().min(0),
    available: z.boolean(),
    error: z.string().optional(),
    checked_at: z.iso.datetime(),
  })
  .meta({ id: "ToolSource" });

export const ToolListSchema = z
  .object({
    tools: z.array(ToolViewSchema),
    sources: z.array(ToolSourceViewSchema),
    workers: z.number().int().min(0).describe("live workers that reported their tools"),
  })
  .meta({ id: "ToolList" });
export type ToolList = z.infer<typeof ToolListSchema>;

export const ToolRefreshAcceptedSchema = z
  .object({
    workers_notified: z
      .number()
      .int()
      .min(0)
      .describe("workers that got the request; each lists its tool sources again now"),
  })
  .meta({ id: "ToolRefreshAccepted" });
export type ToolRefreshAccepted = z.infer<typeof ToolRefreshAcceptedSchema>;
