/**
 * One MCP server's client lifecycle: connect, list its tools, keep the list fresh, call tools,
 * probe health, restart after a crash, close. The transport (stdio child process or streamable
 * HTTP) is mcp-transport.ts's, error texts are mcp-errors.ts's, the backoff is restart-policy.ts's.
 *
 * States: `idle` → `connecting` → `ready` ⇄ (`unavailable` → `connecting` → …) → `closed`.
 *
 * Invariants:
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
 * - error texts carry no secrets (see mcp-errors.ts); a server's stderr goes to the log only;
 * - after `close()` nothing runs: no restart, no timer, the child process is gone.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  type CallToolResult,
  ErrorCode,
  McpError,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import type { McpServerConfig } from "./mcp-config.js";
import {
  describeError,
  isZodError,
  STDERR_IN_ERRORS,
  secretScrubber,
  withStderrNote,
} from "./mcp-errors.js";
import { ListedTools, listAll, type McpTool } from "./mcp-tool-list.js";
import type { TailBuffer } from "./mcp-transport.js";
import { closeClient, createTransport, eventStreamGaveUp, transportPid } from "./mcp-transport.js";
import { raceAbort } from "./promise-bounds.js";
import { DEFAULT_RESTART_POLICY, type RestartPolicy, RestartSchedule } from "./restart-policy.js";

export type McpConnectionState = "idle" | "connecting" | "ready" | "unavailable" | "closed";

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

class StartupTimeout extends Error {}

export class McpConnection {
  readonly name: string;
  private readonly config: McpServerConfig;
  private readonly logger: McpLogger | undefined;
  private readonly restarts: RestartSchedule;
  private readonly pingTimeoutMs: number;
  /** `text` without configured secret values, URL credentials or query values. */
  private readonly scrub: (text: string) => string;

  private currentState: McpConnectionState = "idle";
  private lastError: string | undefined;
  private checked = Date.now();
  private generation = 0;
  private client: Client | null = null;
  private transport: Transport | null = null;
  private stderr: TailBuffer | null = null;
  private readonly listed = new ListedTools();
  private listing: Promise<void> | null = null;
  private relistWanted = false;
  private changedWhileConnecting = false;
  private starting: Promise<void> | null = null;
  private readyTime = 0;
  private closing: Promise<void> | null = null;
  private readonly listeners = new Set<(change: McpConnectionChange) => void>();
  /** Counters for diagnostics and tests. */
  readonly stats = { connects: 0, listings: 0, listChanged: 0, restarts: 0 };

  constructor(options: McpConnectionOptions) {
    this.name = options.name;
    this.config = options.config;
    this.logger = options.logger;
    this.restarts = new RestartSchedule({ ...DEFAULT_RESTART_POLICY, ...options.restart });
    this.pingTimeoutMs = options.pingTimeoutMs ?? 10_000;
    this.scrub = secretScrubber(options.config);
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
    return transportPid(this.transport);
  }

  /** The tools of the last successful listing (kept while the server restarts). */
  tools(): readonly McpTool[] {
    return this.listed.tools;
  }

  /** The last listing is older than `toolsCacheTtlMs`. */
  isStale(now = Date.now()): boolean {
    return this.listed.isStale(now, this.config.toolsCacheTtlMs);
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
    this.restarts.cancel();
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
    this.restarts.cancel();
    const { client, transport } = this;
    this.client = null;
    this.setState("closed", "closed");
    this.closing = client && transport ? closeClient(client, transport, false) : Promise.resolve();
    return this.closing;
  }

  // --- internals -------------------------------------------------------------------------------

  private async connect(): Promise<void> {
    if (this.currentState === "closed") return;
    const generation = ++this.generation;
    this.stats.connects++;
    this.changedWhileConnecting = false;
    this.setState("connecting", this.lastError);
    const { transport, stderr } = createTransport(this.config);
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
      if (eventStreamGaveUp(err)) this.lost(generation, "the event stream of the server broke off");
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
      await closeClient(client, transport, true);
      this.fail(this.withStderr(reason, stderr));
    } finally {
      clearTimeout(timer);
    }
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
    if (this.listed.record(tools)) this.emit("tools");
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
    this.restarts.lostAfter(this.readyTime);
    if (client && transport) void closeClient(client, transport, true);
    const error = stderr ? this.withStderr(reason, stderr) : reason;
    this.logger?.warn("mcp server lost", { server: this.name, error });
    this.fail(error);
    return error;
  }

  private fail(error: string): void {
    this.setState("unavailable", error);
    if (this.currentState === "closed") return;
    this.restarts.schedule(() => {
      this.stats.restarts++;
      void this.connect();
    });
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

  /** `reason` as an error text; the server's stderr tail goes to the log only (see mcp-errors.ts). */
  private withStderr(reason: string, stderr: TailBuffer): string {
    const tail = stderr.tail(STDERR_IN_ERRORS);
    if (tail) {
      this.logger?.warn("mcp server stderr", {
        server: this.name,
        reason,
        stderr: this.scrub(tail),
      });
    }
    return this.scrub(withStderrNote(reason, tail));
  }

  private describe(err: unknown): string {
    return describeError(err, this.config, this.scrub);
  }
}
