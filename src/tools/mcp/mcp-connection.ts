/**
 * One MCP server's client lifecycle: connect (stdio child process or streamable HTTP), list its
 * tools, keep the list fresh, call tools, probe health, restart after a crash, close.
 *
 * States: `idle` → `connecting` → `ready` ⇄ (`unavailable` → `connecting` → …) → `closed`.
 *
 * Invariants:
 * - a stdio server gets only PATH, HOME and LANG of the farm's environment plus its configured
 *   `env` — never the rest (it holds the farm's secrets); its stderr is kept in a bounded buffer
 *   for error messages, never inherited;
 * - `initialize` + the first complete `tools/list` are bounded by `startupTimeoutMs`; a server
 *   that does not make it is torn down (child killed) and counts as a failed attempt;
 * - every failed attempt and every loss of a ready connection (child exit, transport closed, an
 *   HTTP transport error, a ping that goes unanswered) marks the connection `unavailable` and
 *   schedules a new attempt with exponential backoff and jitter (`restartDelay`); the backoff
 *   restarts from the first step only after the connection stayed up for `stableMs`;
 * - the tool list is re-listed on `notifications/tools/list_changed`, on `refreshTools()` and
 *   when a caller finds it older than `toolsCacheTtlMs`; concurrent requests share one listing,
 *   and a request made while a listing runs gets one more listing after it;
 * - `callTool` never throws: it resolves to an outcome. Aborting the caller's signal, and the call
 *   timeout, cancel the request (the SDK sends `notifications/cancelled`);
 * - error texts carry no secrets: configured env and header values, URL credentials and query
 *   values are scrubbed, and the URL is shown without userinfo, query or fragment;
 * - after `close()` nothing runs: no restart, no timer, the child process is gone.
 */
import process from "node:process";
import type { Readable } from "node:stream";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  DEFAULT_INHERITED_ENV_VARS,
  StdioClientTransport,
} from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type CallToolResult,
  ErrorCode,
  McpError,
  type Tool,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { REDACTED, redactSecrets } from "../../obs/redact.js";
import type { McpServerConfig } from "./mcp-config.js";

export type McpConnectionState = "idle" | "connecting" | "ready" | "unavailable" | "closed";

/** The raw tool as the server lists it. */
export type McpTool = Tool;

export interface RestartPolicy {
  /** Delay before the first new attempt. */
  initialMs: number;
  /** The delay doubles per failed attempt up to this. */
  maxMs: number;
  /** A connection that stayed up this long resets the backoff. */
  stableMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialMs: 500,
  maxMs: 30_000,
  stableMs: 60_000,
};

/** Delay before attempt `attempt` (0-based): `min(max, initial·2^attempt)`, jittered into [½, 1]. */
export function restartDelay(
  attempt: number,
  policy: RestartPolicy,
  random: () => number = Math.random,
): number {
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

/** Minimal logger (a winston logger fits). */
export interface McpLogger {
  debug(message: string, meta?: Record<string, unknown>): unknown;
  info(message: string, meta?: Record<string, unknown>): unknown;
  warn(message: string, meta?: Record<string, unknown>): unknown;
}

export interface McpConnectionOptions {
  /** The server's name from the config (`[A-Za-z0-9_-]{1,32}`). */
  name: string;
  config: McpServerConfig;
  logger?: McpLogger;
  restart?: Partial<RestartPolicy>;
  /** Bound of one `ping`; default 10 s. */
  pingTimeoutMs?: number;
}

export type McpCallOutcome =
  | { status: "ok"; result: CallToolResult }
  | { status: "timeout"; timeoutMs: number }
  | { status: "aborted" }
  | { status: "unavailable"; error: string }
  | { status: "failed"; error: string; transient: boolean };

export type McpConnectionChange = "tools" | "state";

/** The farm's MCP client as servers see it; bump with a change in how the client behaves. */
const CLIENT_INFO = { name: "wunder-farm", version: "1" };
/** The only variables of the farm's environment a stdio server inherits. */
const INHERITED_ENV = ["PATH", "HOME", "LANG"] as const;
const STDERR_KEEP_BYTES = 8 * 1024;
const STDERR_IN_ERRORS = 300;
const MAX_LIST_PAGES = 100;
const HTTP_TERMINATE_WAIT_MS = 1_000;

/** The last `max` bytes (roughly: chars) a stream wrote. */
class TailBuffer {
  private text = "";
  constructor(private readonly max: number) {}
  append(chunk: string): void {
    this.text += chunk;
    if (this.text.length > this.max) this.text = this.text.slice(this.text.length - this.max);
  }
  tail(chars: number): string {
    const trimmed = this.text.trim();
    return trimmed.length <= chars ? trimmed : `…${trimmed.slice(trimmed.length - chars)}`;
  }
}

class StartupTimeout extends Error {}

/** The environment of a stdio server: PATH, HOME, LANG and its own `env`, nothing else. */
export function stdioServerEnv(
  configured: Record<string, string>,
  parent: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string | undefined> = {};
  // The SDK merges a few variables of its own choosing (LOGNAME, SHELL, TERM, USER) under ours;
  // an undefined value keeps them out (node's spawn skips undefined values). Windows needs them.
  if (process.platform !== "win32")
    for (const key of DEFAULT_INHERITED_ENV_VARS) env[key] = undefined;
  for (const key of INHERITED_ENV) {
    const value = parent[key];
    if (value !== undefined) env[key] = value;
  }
  Object.assign(env, configured);
  return env as Record<string, string>;
}

/** `url` without userinfo, query or fragment. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

export class McpConnection {
  readonly name: string;
  private readonly config: McpServerConfig;
  private readonly logger: McpLogger | undefined;
  private readonly restartPolicy: RestartPolicy;
  private readonly pingTimeoutMs: number;
  private readonly secrets: string[];

  private currentState: McpConnectionState = "idle";
  private lastError: string | undefined;
  private checked = Date.now();
  private generation = 0;
  private client: Client | null = null;
  private transport: Transport | null = null;
  private stderr: TailBuffer | null = null;
  private listed: readonly McpTool[] = [];
  private listedJson = "[]";
  private listedTime = 0;
  private listing: Promise<void> | null = null;
  private relistWanted = false;
  private changedWhileConnecting = false;
  private starting: Promise<void> | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private readyTime = 0;
  private closing: Promise<void> | null = null;
  private readonly listeners = new Set<(change: McpConnectionChange) => void>();
  /** Counters for diagnostics and tests. */
  readonly stats = { connects: 0, listings: 0, listChanged: 0, restarts: 0 };

  constructor(options: McpConnectionOptions) {
    this.name = options.name;
    this.config = options.config;
    this.logger = options.logger;
    this.restartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restart };
    this.pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
    this.secrets = secretValues(options.config);
  }

  get state(): McpConnectionState {
    return this.currentState;
  }

  /** Why the connection is not ready (no secrets); undefined while it is. */
  get error(): string | undefined {
    return this.lastError;
  }

  /** Epoch ms of the last state change or successful probe. */
  get checkedAt(): number {
    return this.checked;
  }

  /** The stdio child's pid while it runs; null otherwise (and for HTTP). */
  get pid(): number | null {
    return this.transport instanceof StdioClientTransport ? this.transport.pid : null;
  }

  /** The tools of the last successful listing (kept while the server restarts). */
  tools(): readonly McpTool[] {
    return this.listed;
  }

  /** The last listing is older than `toolsCacheTtlMs`. */
  isStale(now = Date.now()): boolean {
    return now - this.listedTime >= this.config.toolsCacheTtlMs;
  }

  onChange(listener: (change: McpConnectionChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first attempt to connect; resolves when it succeeded or failed. Never throws. */
  start(): Promise<void> {
    if (this.currentState === "closed") return Promise.resolve();
    this.starting ??= this.connect();
    return this.starting;
  }

  /** A connection waiting for its next attempt makes it now. Never throws. */
  async reconnectNow(): Promise<void> {
    if (this.currentState !== "unavailable") return;
    this.clearRestartTimer();
    this.stats.restarts++;
    await this.connect();
  }

  /** Lists the tools again now (coalesced with a listing in flight). Never throws. */
  refreshTools(): Promise<void> {
    if (this.currentState !== "ready") return Promise.resolve();
    if (this.listing) {
      this.relistWanted = true;
      return this.listing;
    }
    this.listing = (async () => {
      try {
        do {
          this.relistWanted = false;
          await this.listOnce();
        } while (this.relistWanted && this.currentState === "ready");
      } finally {
        this.listing = null;
      }
    })();
    return this.listing;
  }

  /** An active probe; a server that does not answer is restarted. Never throws. */
  async ping(): Promise<boolean> {
    const client = this.client;
    const generation = this.generation;
    if (this.currentState !== "ready" || !client) return false;
    try {
      await client.ping({ timeout: this.pingTimeoutMs });
      this.checked = Date.now();
      return true;
    } catch (err) {
      if (err instanceof McpError && err.code === ErrorCode.RequestTimeout) {
        this.lost(generation, `did not answer a ping within ${this.pingTimeoutMs} ms`);
        return false;
      }
      if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed) {
        this.checked = Date.now();
        return true; // it answered, if only with an error
      }
      this.lost(generation, this.describe(err));
      return false;
    }
  }

  async callTool(
    tool: string,
    args: Record<string, unknown>,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<McpCallOutcome> {
    const { signal } = options;
    const timeoutMs = options.timeoutMs ?? this.config.callTimeoutMs;
    if (signal?.aborted) return { status: "aborted" };
    const client = this.client;
    const generation = this.generation;
    if (this.currentState !== "ready" || !client) {
      return { status: "unavailable", error: this.lastError ?? this.currentState };
    }
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const result = (await client.callTool({ name: tool, arguments: args }, undefined, {
        signal: controller.signal,
        timeout: timeoutMs,
      })) as CallToolResult;
      return { status: "ok", result };
    } catch (err) {
      if (signal?.aborted) return { status: "aborted" };
      if (err instanceof McpError) {
        if (err.code === ErrorCode.RequestTimeout) return { status: "timeout", timeoutMs };
        if (err.code === ErrorCode.ConnectionClosed) {
          const error = this.lost(generation, "the connection closed during the call");
          return { status: "unavailable", error };
        }
        return { status: "failed", error: this.scrub(err.message), transient: false };
      }
      if (isZodError(err)) {
        return { status: "failed", error: "the server sent an invalid result", transient: false };
      }
      const error = this.lost(generation, this.describe(err));
      return { status: "unavailable", error };
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Stops everything: no restart after it, the child process is gone. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.generation++;
    this.clearRestartTimer();
    const { client, transport } = this;
    this.client = null;
    this.setState("closed", "closed");
    this.closing =
      client && transport ? this.teardown(client, transport, false) : Promise.resolve();
    return this.closing;
  }

  // --- internals -------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.currentState === "closed") return;
    const generation = ++this.generation;
    this.stats.connects++;
    this.changedWhileConnecting = false;
    this.setState("connecting", this.lastError);
    const stderr = new TailBuffer(STDERR_KEEP_BYTES);
    const transport = this.makeTransport(stderr);
    const client = new Client(CLIENT_INFO, { capabilities: {} });
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => {
      if (generation !== this.generation) return;
      this.stats.listChanged++;
      if (this.currentState === "connecting") this.changedWhileConnecting = true;
      else void this.refreshTools();
    });
    client.onclose = () => void this.lost(generation, "the connection closed");
    client.onerror = (err) => {
      if (generation !== this.generation) return;
      this.logger?.debug("mcp transport error", {
        server: this.name,
        error: this.scrub(err.message),
      });
      // The HTTP transport gave up re-opening its event stream: the session is gone.
      if (err.message.startsWith("Maximum reconnection attempts")) {
        this.lost(generation, "the event stream of the server broke off");
      }
    };
    this.client = client;
    this.transport = transport;
    this.stderr = stderr;

    const timeoutMs = this.config.startupTimeoutMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new StartupTimeout()), timeoutMs);
    try {
      const tools = await raceAbort(
        (async () => {
          await client.connect(transport, { signal: controller.signal, timeout: timeoutMs });
          return listAll(client, { signal: controller.signal, timeout: timeoutMs });
        })(),
        controller.signal,
      );
      if (generation !== this.generation) return; // closed meanwhile: `close` tore it down
      this.readyTime = Date.now();
      this.setTools(tools);
      this.setState("ready", undefined);
      this.logger?.info("mcp server ready", { server: this.name, tools: tools.length });
      if (this.changedWhileConnecting) void this.refreshTools();
    } catch (err) {
      if (generation !== this.generation) return;
      const reason =
        controller.signal.aborted && controller.signal.reason instanceof StartupTimeout
          ? `did not finish startup (initialize and tools/list) within ${timeoutMs} ms`
          : this.describe(err);
      this.generation++;
      this.client = null;
      await this.teardown(client, transport, true);
      this.fail(this.withStderr(reason, stderr));
    } finally {
      clearTimeout(timer);
    }
  }

  private makeTransport(stderr: TailBuffer): Transport {
    const config = this.config;
    if (config.transport === "http") {
      return new StreamableHTTPClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
      });
    }
    const transport = new StdioClientTransport({
      command: config.command,
      args: config.args,
      env: stdioServerEnv(config.env),
      stderr: "pipe",
      ...(config.cwd !== undefined ? { cwd: config.cwd } : {}),
    });
    const stream = transport.stderr as Readable | null;
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => stderr.append(chunk));
    return transport;
  }

  private async listOnce(): Promise<void> {
    const client = this.client;
    const generation = this.generation;
    if (!client || this.currentState !== "ready") return;
    try {
      const tools = await listAll(client, { timeout: this.config.startupTimeoutMs });
      if (generation !== this.generation) return;
      this.setTools(tools);
    } catch (err) {
      if (generation !== this.generation) return;
      if (err instanceof McpError && err.code !== ErrorCode.ConnectionClosed) {
        // It answered: keep the last list, try again when it is next wanted.
        this.logger?.warn("mcp tools/list failed", {
          server: this.name,
          error: this.scrub(err.message),
        });
        return;
      }
      this.lost(generation, this.describe(err));
    }
  }

  private setTools(tools: readonly McpTool[]): void {
    this.stats.listings++;
    this.listedTime = Date.now();
    const json = JSON.stringify(tools);
    if (json === this.listedJson) return;
    this.listed = tools;
    this.listedJson = json;
    this.emit("tools");
  }

  /**
   * A ready connection of `generation` is gone: mark it unavailable, tear it down, schedule a new
   * attempt. Returns the reason as callers should report it.
   */
  private lost(generation: number, reason: string): string {
    if (generation !== this.generation || this.currentState !== "ready") {
      return this.lastError ?? reason;
    }
    const { client, transport, stderr } = this;
    this.generation++;
    this.client = null;
    if (Date.now() - this.readyTime >= this.restartPolicy.stableMs) this.attempt = 0;
    if (client && transport) void this.teardown(client, transport, true);
    const error = stderr ? this.withStderr(reason, stderr) : reason;
    this.logger?.warn("mcp server lost", { server: this.name, error });
    this.fail(error);
    return error;
  }

  private fail(error: string): void {
    this.setState("unavailable", error);
    if (this.currentState === "closed") return;
    const delay = restartDelay(this.attempt, this.restartPolicy);
    this.attempt++;
    this.clearRestartTimer();
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      this.stats.restarts++;
      void this.connect();
    }, delay);
    this.restartTimer.unref();
  }

  private clearRestartTimer(): void {
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
  }

  /** Closes the client; `force` kills a stdio child first instead of waiting for it to exit. */
  private async teardown(client: Client, transport: Transport, force: boolean): Promise<void> {
    if (transport instanceof StdioClientTransport && force) {
      const pid = transport.pid;
      if (pid !== null) {
        try {
          process.kill(pid, "SIGTERM");
        } catch {
          // already gone
        }
      }
    }
    if (transport instanceof StreamableHTTPClientTransport && !force) {
      await withTimeout(
        transport.terminateSession().catch(() => undefined),
        HTTP_TERMINATE_WAIT_MS,
      );
    }
    await client.close().catch(() => undefined);
    if (transport instanceof StreamableHTTPClientTransport) {
      // The SDK can schedule event-stream reconnections even after close (a fetch aborted by
      // the close counts as a failure to retry); a closed transport must not keep timers.
      (transport as unknown as { _scheduleReconnection: () => void })._scheduleReconnection = () =>
        undefined;
    }
  }

  private setState(state: McpConnectionState, error: string | undefined): void {
    if (this.currentState === "closed") return;
    this.checked = Date.now();
    const changed = state !== this.currentState || error !== this.lastError;
    this.currentState = state;
    this.lastError = error;
    if (changed) this.emit("state");
  }

  private emit(change: McpConnectionChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.logger?.warn("mcp change listener failed", {
          server: this.name,
          error: err instanceof Error ? err.message : String(err),
        });
      }
    }
  }

  /**
   * The server's stderr goes to the worker's log only: health errors reach the tool catalogue
   * (`GET /v1/tools`), and a server may print what it should not (hosts, paths, its own tokens).
   */
  private withStderr(reason: string, stderr: TailBuffer): string {
    const tail = stderr.tail(STDERR_IN_ERRORS);
    if (!tail) return this.scrub(reason);
    this.logger?.warn("mcp server stderr", { server: this.name, reason, stderr: this.scrub(tail) });
    return this.scrub(`${reason} (its stderr is in the worker's log)`);
  }

  /** A readable reason for `err`, without secrets. */
  private describe(err: unknown): string {
    const config = this.config;
    const sys = err as NodeJS.ErrnoException | undefined;
    if (config.transport === "stdio" && sys?.syscall?.startsWith("spawn")) {
      if (sys.code === "ENOENT") return `command not found: ${config.command}`;
      if (sys.code === "EACCES") return `command is not executable: ${config.command}`;
    }
    if (err instanceof McpError && err.code === ErrorCode.ConnectionClosed) {
      return config.transport === "stdio" ? "the server process exited" : "the connection closed";
    }
    let text = err instanceof Error ? err.message : String(err);
    const cause = (err as { cause?: unknown } | undefined)?.cause;
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      text += ` (${code ?? cause.message})`;
    }
    if (config.transport === "http") text = `${text} [${displayUrl(config.url)}]`;
    return this.scrub(text);
  }

  /** `text` without configured secret values, URL credentials or query values. */
  private scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) out = out.split(secret).join(REDACTED);
    return redactSecrets(out);
  }
}

/** Values in the config that must never show in error texts, longest first. */
function secretValues(config: McpServerConfig): string[] {
  const values: string[] = [];
  if (config.transport === "stdio") values.push(...Object.values(config.env));
  else {
    values.push(...Object.values(config.headers));
    try {
      const url = new URL(config.url);
      if (url.username) values.push(decodeURIComponent(url.username), url.username);
      if (url.password) values.push(decodeURIComponent(url.password), url.password);
      for (const value of url.searchParams.values()) values.push(value);
      if (url.search) values.push(url.search.slice(1));
    } catch {
      // the schema checked it
    }
  }
  return [...new Set(values.filter((v) => v.length >= 3))].sort((a, b) => b.length - a.length);
}

async function listAll(
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

/** `promise`, or a rejection as soon as `signal` aborts (the promise's own failure is then ignored). */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (err) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function isZodError(err: unknown): boolean {
  return (
    err instanceof Error && Array.isArray((err as { issues?: unknown }).issues) && !("code" in err)
  );
}
