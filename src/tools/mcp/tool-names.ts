/**
 * Model-visible names of MCP tools: `<server>__<tool>`, made safe for the model's API and unique
 * across every MCP server and the names reserved by other sources (the built-in tools).
 *
 * Invariants:
 * - every name matches `TOOL_NAME_PATTERN` (`[A-Za-z0-9_-]{1,64}`): any other character of the raw
 *   server or tool name (unicode, dots, spaces, `@`, …) becomes `_`, one per code point;
 * - names are unique and never equal a reserved name. A name that is too long, that several raw
 *   tools share after sanitising, or that is reserved is cut to fit and given `_` + the first
 *   8 hex chars of sha1(server + "\0" + tool); if that is still taken, the hash is taken again
 *   over `server \0 tool \0 <attempt>` until it is free. In a group sharing one sanitised name,
 *   a tool whose raw `server__tool` already *is* that name keeps it; all the others are hashed;
 * - the assignment depends only on the set of (server, tool) pairs and the reserved names, never
 *   on the order they are given in (candidates are sorted by raw identity);
 * - the display name is the raw `server@tool` (wunder style), and `resolve` maps a model name back
 *   to the real server and tool, which is what `tools/call` needs.
 */
import { createHash } from "node:crypto";
import { TOOL_NAME_PATTERN } from "../source.js";

export const MAX_TOOL_NAME_LENGTH = 64;
const SEPARATOR = "__";
const HASH_CHARS = 8;

export interface McpToolRef {
  server: string;
  tool: string;
}

export interface NamedMcpTool extends McpToolRef {
  /** Model-visible name. */
  name: string;
  /** `server@tool`, raw. */
  displayName: string;
}

/** `raw` with every character outside `[A-Za-z0-9_-]` replaced by `_` (empty → `_`). */
export function sanitizeToolName(raw: string): string {
  let out = "";
  for (const ch of raw) out += /^[A-Za-z0-9_-]$/.test(ch) ? ch : "_";
  return out === "" ? "_" : out;
}

export function mcpDisplayName(server: string, tool: string): string {
  return `${server}@${tool}`;
}

function identity(ref: McpToolRef): string {
  return `${ref.server}\u0000${ref.tool}`;
}

function hashSuffix(ref: McpToolRef, attempt: number): string {
  const input = attempt === 0 ? identity(ref) : `${identity(ref)}\u0000${attempt}`;
  return createHash("sha1").update(input).digest("hex").slice(0, HASH_CHARS);
}

function compareRaw(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** One assignment of model names; immutable. */
export class McpToolNames {
  private readonly byKey = new Map<string, NamedMcpTool>();
  private readonly byName = new Map<string, NamedMcpTool>();

  constructor(tools: Iterable<McpToolRef>, reserved: Iterable<string> = []) {
    const taken = new Set(reserved);
    const unique = new Map<string, McpToolRef>();
    for (const { server, tool } of tools) unique.set(identity({ server, tool }), { server, tool });
    const sorted = [...unique.entries()].sort(([a], [b]) => compareRaw(a, b));

    const groups = new Map<string, { key: string; ref: McpToolRef }[]>();
    for (const [key, ref] of sorted) {
      const base = `${sanitizeToolName(ref.server)}${SEPARATOR}${sanitizeToolName(ref.tool)}`;
      const group = groups.get(base);
      if (group) group.push({ key, ref });
      else groups.set(base, [{ key, ref }]);
    }

    // Plain names first, so that a hashed name can never take one.
    const hashed: { key: string; ref: McpToolRef; base: string }[] = [];
    for (const [base, group] of groups) {
      const plainOk = base.length <= MAX_TOOL_NAME_LENGTH && !taken.has(base);
      const owner = !plainOk
        ? undefined
        : group.length === 1
          ? group[0]
          : group.find(({ ref }) => `${ref.server}${SEPARATOR}${ref.tool}` === base);
      for (const member of group) {
        if (member === owner) this.assign(member.key, member.ref, base, taken);
        else hashed.push({ ...member, base });
      }
    }

    hashed.sort((a, b) => compareRaw(a.key, b.key));
    for (const { key, ref, base } of hashed) {
      const head = base.slice(0, MAX_TOOL_NAME_LENGTH - HASH_CHARS - 1);
      let attempt = 0;
      let name = `${head}_${hashSuffix(ref, attempt)}`;
      while (taken.has(name)) name = `${head}_${hashSuffix(ref, ++attempt)}`;
      this.assign(key, ref, name, taken);
    }
  }

  private assign(key: string, ref: McpToolRef, name: string, taken: Set<string>): void {
    if (!TOOL_NAME_PATTERN.test(name)) throw new Error(`bug: invalid MCP tool name ${name}`);
    const named: NamedMcpTool = { ...ref, name, displayName: mcpDisplayName(ref.server, ref.tool) };
    taken.add(name);
    this.byKey.set(key, named);
    this.byName.set(name, named);
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The model name of a raw (server, tool); undefined when it was not given. */
  nameOf(server: string, tool: string): string | undefined {
    return this.byKey.get(identity({ server, tool }))?.name;
  }

  /** The real server and tool behind a model name. */
  resolve(name: string): McpToolRef | undefined {
    const named = this.byName.get(name);
    return named ? { server: named.server, tool: named.tool } : undefined;
  }

  /** Every named tool, sorted by model name. */
  list(): NamedMcpTool[] {
    return [...this.byName.values()].sort((a, b) => compareRaw(a.name, b.name));
  }
}

/** Names `tools` (across all servers) so that none takes a `reserved` name. */
export function qualifyMcpToolNames(
  tools: Iterable<McpToolRef>,
  reserved: Iterable<string> = [],
): McpToolNames {
  return new McpToolNames(tools, reserved);
}

/**
 * The live name space shared by every MCP source of a registry: each source declares the raw
 * names of the tools it offers (`setServerTools`), and reads its model names back (`nameOf`).
 * Every declaration recomputes the whole assignment, so a tool's name can change when another
 * server starts offering a tool that collides with it; `onChange` tells the sources.
 *
 * A server that becomes unavailable keeps its declaration (its names stay stable while it
 * restarts); only a source that is closed withdraws it (`removeServer`).
 */
export class McpToolNamer {
  private reserved: Set<string>;
  private readonly servers = new Map<string, readonly string[]>();
  private names: McpToolNames;
  private rev = 0;
  private readonly listeners = new Set<() => void>();

  constructor(reserved: Iterable<string> = []) {
    this.reserved = new Set(reserved);
    this.names = new McpToolNames([], this.reserved);
  }

  /** Bumped whenever the assignment is recomputed. */
  get revision(): number {
    return this.rev;
  }

  /** The names other sources own (the built-in tools' names). */
  setReserved(names: Iterable<string>): void {
    this.reserved = new Set(names);
    this.recompute();
  }

  setServerTools(server: string, tools: readonly string[]): void {
    const before = this.servers.get(server);
    if (before && before.length === tools.length && before.every((t, i) => t === tools[i])) return;
    this.servers.set(server, [...tools]);
    this.recompute();
  }

  removeServer(server: string): void {
    if (this.servers.delete(server)) this.recompute();
  }

  nameOf(server: string, tool: string): string | undefined {
    return this.names.nameOf(server, tool);
  }

  resolve(name: string): McpToolRef | undefined {
    return this.names.resolve(name);
  }

  list(): NamedMcpTool[] {
    return this.names.list();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private recompute(): void {
    const refs: McpToolRef[] = [];
    for (const [server, tools] of this.servers)
      for (const tool of tools) refs.push({ server, tool });
    this.names = new McpToolNames(refs, this.reserved);
    this.rev++;
    for (const listener of [...this.listeners]) listener();
  }
}
