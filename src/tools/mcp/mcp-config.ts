/**
 * How an operator declares an MCP server: config file `tools.mcpServers.<name>` (or the
 * `MCP_SERVERS` env variable holding the same object as JSON).
 *
 * Invariants:
 * - a server name is `[A-Za-z0-9_-]{1,32}`: it prefixes the model-visible names of its tools;
 * - `env` and `headers` may hold secrets: they go to the server only, never into events,
 *   job data, logs or the tool catalogue.
 */
import { z } from "zod";

const positiveInt = z.coerce.number().int().positive();

const common = {
  /** Off: the server is not started and its tools are not offered. */
  enabled: z.boolean().default(true),
  description: z.string().max(1_000).optional(),
  /** Only these tools (the server's own names) are offered; unset → all. */
  allowTools: z.array(z.string()).optional(),
  /** These tools are never offered. */
  denyTools: z.array(z.string()).default([]),
  /** Bound of `initialize` + the first `tools/list`. */
  startupTimeoutMs: positiveInt.default(30_000),
  /** Bound of one `tools/call` that names none itself. */
  callTimeoutMs: positiveInt.default(120_000),
  /** A listed tool set is reused this long before it is listed again. */
  toolsCacheTtlMs: positiveInt.default(30_000),
  /**
   * Calls to this server may run beside other calls of the round. Unset: only the tools the
   * server marks `readOnlyHint` do.
   */
  parallelSafe: z.boolean().optional(),
};

export const McpStdioServerSchema = z.object({
  transport: z.literal("stdio"),
  command: z.string().min(1),
  args: z.array(z.string()).default([]),
  /** Extra environment of the server process (the farm's own env is not passed on). */
  env: z.record(z.string(), z.string()).default({}),
  cwd: z.string().optional(),
  ...common,
});

export const McpHttpServerSchema = z.object({
  transport: z.literal("http"),
  /** Streamable HTTP endpoint, e.g. `http://127.0.0.1:3001/mcp`. */
  url: z.url({ protocol: /^https?$/ }),
  headers: z.record(z.string(), z.string()).default({}),
  ...common,
});

export const McpServerConfigSchema = z.discriminatedUnion("transport", [
  McpStdioServerSchema,
  McpHttpServerSchema,
]);
export type McpServerConfig = z.infer<typeof McpServerConfigSchema>;

export const MCP_SERVER_NAME = /^[A-Za-z0-9_-]{1,32}$/;
