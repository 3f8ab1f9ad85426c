/**
 * The configured MCP servers as sources of a registry.
 *
 * Invariant: call it after the built-in source is added: the names the registry holds by then
 * are reserved, so no MCP tool can take a built-in's name (see tool-names.ts). All the sources
 * share one namer, so MCP tool names are unique across servers too.
 */
import type { ToolRegistry } from "../registry.js";
import type { McpServerConfig } from "./mcp-config.js";
import type { McpLogger } from "./mcp-connection.js";
import { createMcpToolSources, type McpToolSource } from "./mcp-source.js";
import type { RestartPolicy } from "./restart-policy.js";

export function addMcpSources(
  registry: ToolRegistry,
  servers: Readonly<Record<string, McpServerConfig>>,
  logger?: McpLogger,
  restart?: Partial<RestartPolicy>,
): McpToolSource[] {
  const { sources } = createMcpToolSources(servers, {
    reserved: registry.names(),
    ...(logger ? { logger } : {}),
    ...(restart ? { restart } : {}),
  });
  for (const source of sources) registry.add(source);
  return sources;
}
