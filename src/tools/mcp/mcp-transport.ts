/**
 * The transport to one MCP server, built from its config: a stdio child process or streamable
 * HTTP; and its teardown.
 *
 * Invariants:
 * - a stdio server gets only PATH, HOME and LANG of the farm's environment plus its configured
 *   `env` — never the rest (it holds the farm's secrets);
 * - a stdio server's stderr is piped into a bounded buffer (the last 8 KiB), never inherited;
 * - a forced teardown kills a stdio child instead of waiting for it to exit; a graceful one ends
 *   an HTTP session first, waiting for the server at most `HTTP_TERMINATE_WAIT_MS`;
 * - a torn-down HTTP transport keeps no reconnection timer.
 */
import process from "node:process";
import type { Readable } from "node:stream";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import {
  DEFAULT_INHERITED_ENV_VARS,
  StdioClientTransport,
} from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { McpServerConfig } from "./mcp-config.js";
import { withTimeout } from "./promise-bounds.js";

/** The only variables of the farm's environment a stdio server inherits. */
const INHERITED_ENV = ["PATH", "HOME", "LANG"] as const;
const STDERR_KEEP_BYTES = 8 * 1024;
const HTTP_TERMINATE_WAIT_MS = 1_000;

/** The last `max` bytes (roughly: chars) a stream wrote. */
export class TailBuffer {
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

/** A new, unstarted transport for `config`, and the buffer its stderr goes to (empty for HTTP). */
export function createTransport(config: McpServerConfig): {
  transport: Transport;
  stderr: TailBuffer;
} {
  const stderr = new TailBuffer(STDERR_KEEP_BYTES);
  if (config.transport === "http") {
    const transport = new StreamableHTTPClientTransport(new URL(config.url), {
      requestInit: { headers: config.headers },
    });
    return { transport, stderr };
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
  return { transport, stderr };
}

/** The stdio child's pid while it runs; null otherwise (and for HTTP). */
export function transportPid(transport: Transport | null): number | null {
  return transport instanceof StdioClientTransport ? transport.pid : null;
}

/** The HTTP transport gave up re-opening its event stream (`err` from `onerror`): the session is gone. */
export function eventStreamGaveUp(err: Error): boolean {
  return err.message.startsWith("Maximum reconnection attempts");
}

/** Closes `client`; `force` kills a stdio child first instead of waiting for it to exit. */
export async function closeClient(
  client: Client,
  transport: Transport,
  force: boolean,
): Promise<void> {
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
