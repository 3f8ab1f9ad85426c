/**
 * One configured MCP server as a tool source (`mcp:<server>`): its listed tools as `ToolEntry`s,
 * its health, and calls through its `McpConnection`.
 *
 * Naming: every MCP source of a registry shares one `McpToolNamer` (constructed with the names of
 * the built-in tools as reserved names). A source declares the raw names of the tools it offers
 * to the namer whenever its list changes and reads their model names back from it, so names are
 * unique across all servers and built-ins (see tool-names.ts). A declaration by one source can
 * rename another source's tool (a new collision): the namer tells every source, and a source whose
 * names changed fires `onChange`. `createMcpToolSources` wires this up from the config.
 *
 * Invariants:
 * - offered tools = listed tools, minus those outside `allowTools` (when set), those in
 *   `denyTools`, and those the server runs only as tasks (`execution.taskSupport: "required"`,
 *   which a plain `tools/call` cannot run);
 * - an entry object is reused while its name, version and annotations stay the same (the registry
 *   caches specs by entry), and its schema is compiled for validation at most once;
 * - `version` is a short hash of the tool's input schema and description;
 * - `call` never throws: a tool error is `ok: false`; a timeout, a lost or unavailable server is
 *   `ok: false, transient: true`; an abort of `ctx.signal` is `ok: false, error: "aborted"`;
 * - `tools()` serves the cached list; when it is older than `toolsCacheTtlMs` it also starts a
 *   listing in the background (`onChange` fires if it differs). `checkHealth` pings, and lists
 *   again when the list is stale.
 */
import { createHash } from "node:crypto";
import { ABORTED_ERROR } from "../builtin/result.js";
import type { SourceHealth, ToolEntry, ToolSource, Validation } from "../source.js";
import type { ToolContext, ToolOutput } from "../tool.js";
import type { McpServerConfig } from "./mcp-config.js";
import { McpConnection, type McpConnectionOptions, type McpLogger } from "./mcp-connection.js";
import type { McpTool } from "./mcp-tool-list.js";
import type { RestartPolicy } from "./restart-policy.js";
import { type CompiledSchema, SchemaValidators } from "./schema-validator.js";
import { McpToolNamer, mcpDisplayName } from "./tool-names.js";

export const MCP_SOURCE_PREFIX = "mcp:";

export interface McpToolSourceOptions {
  /** The server's name from the config. */
  name: string;
  config: McpServerConfig;
  /** The name space shared with the other MCP sources; default: one of this source's own. */
  namer?: McpToolNamer;
  logger?: McpLogger;
  restart?: Partial<RestartPolicy>;
  pingTimeoutMs?: number;
}

interface Built {
  key: string;
  entry: ToolEntry;
  dispose(): void;
}

export class McpToolSource implements ToolSource {
  readonly id: string;
  readonly server: string;
  readonly connection: McpConnection;
  private readonly config: McpServerConfig;
  private readonly namer: McpToolNamer;
  private readonly validators = new SchemaValidators();
  private readonly listeners = new Set<() => void>();
  private readonly unsubscribes: (() => void)[] = [];
  private offered: readonly McpTool[] = [];
  private modelNames: readonly (string | undefined)[] = [];
  private built = new Map<string, Built>();
  private entries: readonly ToolEntry[] = [];
  private dirty = false;
  private declaring = false;
  private closed = false;

  constructor(options: McpToolSourceOptions) {
    this.server = options.name;
    this.id = `${MCP_SOURCE_PREFIX}${options.name}`;
    this.config = options.config;
    this.namer = options.namer ?? new McpToolNamer();
    const connectionOptions: McpConnectionOptions = { name: options.name, config: options.config };
    if (options.logger) connectionOptions.logger = options.logger;
    if (options.restart) connectionOptions.restart = options.restart;
    if (options.pingTimeoutMs !== undefined)
      connectionOptions.pingTimeoutMs = options.pingTimeoutMs;
    this.connection = new McpConnection(connectionOptions);
    this.unsubscribes.push(
      this.connection.onChange((change) => this.onConnectionChange(change)),
      this.namer.onChange(() => this.onNamesChange()),
    );
  }

  /** The server's tools that this source offers, raw (after the allow/deny filters). */
  rawTools(): readonly McpTool[] {
    return this.offered;
  }

  tools(): readonly ToolEntry[] {
    if (this.closed) return [];
    if (this.connection.state === "ready" && this.connection.isStale()) {
      void this.connection.refreshTools();
    }
    if (this.dirty) this.rebuild();
    return this.entries;
  }

  health(): SourceHealth {
    const checkedAt = this.connection.checkedAt;
    if (!this.config.enabled) return { available: false, error: "disabled in config", checkedAt };
    const state = this.connection.state;
    if (state === "ready") return { available: true, checkedAt };
    const error =
      this.connection.error ??
      (state === "idle" ? "not started" : state === "connecting" ? "starting" : state);
    return { available: false, error, checkedAt };
  }

  async start(): Promise<void> {
    if (!this.config.enabled || this.closed) return;
    await this.connection.start();
  }

  async checkHealth(): Promise<SourceHealth> {
    if (this.config.enabled && this.connection.state === "ready") {
      const alive = await this.connection.ping();
      if (alive && this.connection.isStale()) await this.connection.refreshTools();
    }
    return this.health();
  }

  /** Lists the tools again now; a server waiting to restart is restarted now. */
  async refresh(): Promise<void> {
    if (!this.config.enabled || this.closed) return;
    if (this.connection.state === "unavailable") await this.connection.reconnectNow();
    else await this.connection.refreshTools();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const unsubscribe of this.unsubscribes.splice(0)) unsubscribe();
    this.namer.removeServer(this.server);
    await this.connection.close();
    for (const built of this.built.values()) built.dispose();
    this.built.clear();
    this.entries = [];
    this.emit();
    this.listeners.clear();
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // --- internals -------------------------------------------------------------------------------

  private onConnectionChange(change: "tools" | "state"): void {
    if (change === "tools") {
      this.offered = this.connection.tools().filter((tool) => this.offers(tool));
      this.declaring = true;
      try {
        this.namer.setServerTools(
          this.server,
          this.offered.map((tool) => tool.name),
        );
      } finally {
        this.declaring = false;
      }
      this.dirty = true;
    }
    this.emit();
  }

  private onNamesChange(): void {
    if (this.declaring) return;
    const names = this.offered.map((tool) => this.namer.nameOf(this.server, tool.name));
    if (names.every((name, i) => name === this.modelNames[i])) return;
    this.dirty = true;
    this.emit();
  }

  private offers(tool: McpTool): boolean {
    const { allowTools, denyTools } = this.config;
    if (allowTools && !allowTools.includes(tool.name)) return false;
    if (denyTools.includes(tool.name)) return false;
    return tool.execution?.taskSupport !== "required";
  }

  private rebuild(): void {
    this.dirty = false;
    const next = new Map<string, Built>();
    const entries: ToolEntry[] = [];
    const names: (string | undefined)[] = [];
    for (const tool of this.offered) {
      const name = this.namer.nameOf(this.server, tool.name);
      names.push(name);
      if (name === undefined || next.has(tool.name)) continue;
      const version = toolVersion(tool);
      const key = JSON.stringify([name, version, tool.annotations ?? null, tool.title ?? null]);
      const previous = this.built.get(tool.name);
      const built = previous?.key === key ? previous : this.build(tool, name, version, key);
      next.set(tool.name, built);
      entries.push(built.entry);
    }
    for (const [raw, built] of this.built) if (next.get(raw) !== built) built.dispose();
    this.built = next;
    this.entries = entries;
    this.modelNames = names;
  }

  private build(tool: McpTool, name: string, version: string, key: string): Built {
    const readOnly = tool.annotations?.readOnlyHint === true;
    const kind = readOnly ? "read_only" : "mutating";
    const { $schema: _dialect, ...inputSchema } = tool.inputSchema as Record<string, unknown>;
    let compiled: CompiledSchema | null | undefined;
    const validator = () => {
      if (compiled === undefined) {
        compiled = this.validators.compile(tool.inputSchema as Record<string, unknown>);
      }
      return compiled;
    };
    const entry: ToolEntry = {
      name,
      displayName: mcpDisplayName(this.server, tool.name),
      description:
        tool.description ||
        tool.title ||
        this.config.description ||
        mcpDisplayName(this.server, tool.name),
      version,
      kind,
      inputSchema,
      source: this.id,
      breakerKey: this.id,
      idempotent: tool.annotations?.idempotentHint === true || readOnly,
      parallelSafe: this.config.parallelSafe ?? kind === "read_only",
      timeoutMs: this.config.callTimeoutMs,
      validate: (args) => validateArgs(args, validator()),
      call: (args, ctx) => this.call(tool.name, args, ctx),
    };
    return {
      key,
      entry,
      dispose: () => {
        if (compiled) compiled.dispose();
        compiled = null;
      },
    };
  }

  private async call(tool: string, args: unknown, ctx: ToolContext): Promise<ToolOutput> {
    const outcome = await this.connection.callTool(tool, (args ?? {}) as Record<string, unknown>, {
      signal: ctx.signal,
      timeoutMs: this.config.callTimeoutMs,
    });
    switch (outcome.status) {
      case "ok":
        return toolOutput(outcome.result);
      case "aborted":
        return { ok: false, data: null, error: ABORTED_ERROR };
      case "timeout":
        return failure(
          `mcp server ${this.server} did not answer within ${outcome.timeoutMs} ms`,
          true,
        );
      case "unavailable":
        return failure(`mcp server ${this.server} is unavailable: ${outcome.error}`, true);
      case "failed":
        return failure(`mcp server ${this.server}: ${outcome.error}`, outcome.transient);
    }
  }

  private emit(): void {
    for (const listener of [...this.listeners]) listener();
  }
}

function failure(error: string, transient: boolean): ToolOutput {
  return { ok: false, data: null, error, ...(transient ? { transient: true } : {}) };
}

function validateArgs(args: unknown, compiled: CompiledSchema | null): Validation {
  const value = args ?? {};
  if (typeof value !== "object" || Array.isArray(value)) {
    return { ok: false, issues: ["(arguments): must be an object"] };
  }
  const issues = compiled ? compiled.check(value) : [];
  return issues.length === 0 ? { ok: true, value } : { ok: false, issues };
}

/** A short hash of what the model sees of a tool: its input schema and description. */
export function toolVersion(tool: Pick<McpTool, "inputSchema" | "description">): string {
  return createHash("sha1")
    .update(canonicalJson(tool.inputSchema))
    .update("\u0000")
    .update(tool.description ?? "")
    .digest("hex")
    .slice(0, 12);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

type CallResult = Extract<
  Awaited<ReturnType<McpConnection["callTool"]>>,
  { status: "ok" }
>["result"];
type ContentItem = CallResult["content"][number];

/** The model's view of a `tools/call` result. */
export function toolOutput(result: CallResult): ToolOutput {
  const content = result.content ?? [];
  if (result.isError) {
    const text = content
      .filter((item): item is Extract<ContentItem, { type: "text" }> => item.type === "text")
      .map((item) => item.text)
      .join("\n")
      .trim();
    return { ok: false, data: null, error: text || "the tool reported an error" };
  }
  if (result.structuredContent !== undefined) return { ok: true, data: result.structuredContent };
  const items = content.map(compactContent);
  return { ok: true, data: items.length === 1 && typeof items[0] === "string" ? items[0] : items };
}

/** Text as text; binary content as `{type, mime_type, bytes}`, never its base64. */
export function compactContent(item: ContentItem): unknown {
  switch (item.type) {
    case "text":
      return item.text;
    case "image":
    case "audio":
      return { type: item.type, mime_type: item.mimeType, bytes: base64Bytes(item.data) };
    case "resource": {
      const resource = item.resource;
      const base = { type: "resource", uri: resource.uri, mime_type: resource.mimeType ?? null };
      return "text" in resource && typeof resource.text === "string"
        ? { ...base, text: resource.text }
        : { ...base, bytes: base64Bytes(String((resource as { blob?: unknown }).blob ?? "")) };
    }
    case "resource_link":
      return {
        type: "resource_link",
        uri: item.uri,
        name: item.name,
        mime_type: item.mimeType ?? null,
      };
    default:
      return { type: (item as { type: string }).type };
  }
}

function base64Bytes(data: string): number {
  const clean = data.replace(/\s/g, "");
  const padding = clean.endsWith("==") ? 2 : clean.endsWith("=") ? 1 : 0;
  return Math.max(0, Math.floor((clean.length * 3) / 4) - padding);
}

export interface McpToolSourcesOptions {
  /** Names the MCP tools must not take (the built-in tools' names). */
  reserved?: Iterable<string>;
  logger?: McpLogger;
  restart?: Partial<RestartPolicy>;
  pingTimeoutMs?: number;
}

/**
 * One source per enabled server of `servers` (config `tools.mcpServers`), sharing one namer.
 * Add them to the registry after the built-in source, then start the registry.
 */
export function createMcpToolSources(
  servers: Readonly<Record<string, McpServerConfig>>,
  options: McpToolSourcesOptions = {},
): { namer: McpToolNamer; sources: McpToolSource[] } {
  const namer = new McpToolNamer(options.reserved ?? []);
  const sources: McpToolSource[] = [];
  for (const [name, config] of Object.entries(servers)) {
    if (!config.enabled) continue;
    sources.push(
      new McpToolSource({
        name,
        config,
        namer,
        ...(options.logger ? { logger: options.logger } : {}),
        ...(options.restart ? { restart: options.restart } : {}),
        ...(options.pingTimeoutMs !== undefined ? { pingTimeoutMs: options.pingTimeoutMs } : {}),
      }),
    );
  }
  return { namer, sources };
}
