/**
 * The tools an MCP server lists: one complete, paginated `tools/list`, and the last such listing
 * a connection keeps.
 *
 * Invariants: a listing follows at most `MAX_LIST_PAGES` pages; the kept list is replaced only by
 * a complete listing that differs from it (compared as JSON), and every complete listing counts
 * as fresh, changed or not.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";

/** The raw tool as the server lists it. */
export type McpTool = Tool;

const MAX_LIST_PAGES = 100;

/** All pages of `tools/list`, up to `MAX_LIST_PAGES`. */
export async function listAll(
  client: Client,
  options: { signal?: AbortSignal; timeout: number },
): Promise<McpTool[]> {
  const tools: McpTool[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_LIST_PAGES; page++) {
    const result = await client.listTools(cursor === undefined ? undefined : { cursor }, options);
    tools.push(...result.tools);
    cursor = result.nextCursor;
    if (cursor === undefined) break;
  }
  return tools;
}

/** The last complete listing and when it was made. */
export class ListedTools {
  private list: readonly McpTool[] = [];
  private json = "[]";
  private time = 0;

  get tools(): readonly McpTool[] {
    return this.list;
  }

  /** The last listing is older than `ttlMs`. */
  isStale(now: number, ttlMs: number): boolean {
    return now - this.time >= ttlMs;
  }

  /** Keeps a complete listing; true when it differs from the last. */
  record(tools: readonly McpTool[]): boolean {
    this.time = Date.now();
    const json = JSON.stringify(tools);
    if (json === this.json) return false;
    this.list = tools;
    this.json = json;
    return true;
  }
}
