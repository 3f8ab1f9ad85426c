/**
 * Error texts about one MCP server, as they reach the health report (`GET /v1/tools`), tool
 * results and logs.
 *
 * Invariants:
 * - no text carries a secret: configured env and header values, URL credentials and query values
 *   (each of at least 3 chars) are replaced by `[redacted]`, as is anything credential-looking;
 * - a URL is shown without userinfo, query or fragment;
 * - a server's stderr never enters an error text (a server may print what it should not: hosts,
 *   paths, its own tokens); the text only points to the worker's log.
 */
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import { REDACTED, redactSecrets } from "../../obs/redact.js";
import type { McpServerConfig } from "./mcp-config.js";

/** How much of a server's stderr (chars, from the end) is logged when it fails. */
export const STDERR_IN_ERRORS = 300;

/** `url` without userinfo, query or fragment. */
export function displayUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(invalid url)";
  }
}

/** Scrubs a text of the secret values in `config`, URL credentials or query values. */
export function secretScrubber(config: McpServerConfig): (text: string) => string {
  const secrets = secretValues(config);
  return (text) => {
    let out = text;
    for (const secret of secrets) out = out.split(secret).join(REDACTED);
    return redactSecrets(out);
  };
}

/** A readable reason for `err` of the server of `config`, without secrets. */
export function describeError(
  err: unknown,
  config: McpServerConfig,
  scrub: (text: string) => string,
): string {
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
  return scrub(text);
}

/** `reason`, pointing to the worker's log when the server wrote `stderrTail` (not scrubbed). */
export function withStderrNote(reason: string, stderrTail: string): string {
  return stderrTail ? `${reason} (its stderr is in the worker's log)` : reason;
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

/** `err` is the SDK's schema rejecting what the server sent (a zod error). */
export function isZodError(err: unknown): boolean {
  return (
    err instanceof Error && Array.isArray((err as { issues?: unknown }).issues) && !("code" in err)
  );
}
