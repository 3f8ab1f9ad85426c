/**
 * The simulator's HTTP server: plain `node:http` (it must stay cheap at hundreds of requests per
 * second), three routes, OpenAI-shaped errors for everything else.
 *
 * Invariants:
 * - keep-alive sockets are held long (clients reuse connections, as with a real provider);
 * - `close()` ends in-flight, hung and idle connections alike, so it returns promptly, and it
 *   may be called more than once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { FarmConfig } from "../config/schema.js";
import type { Logger } from "../obs/logger.js";
import { createChatHandler } from "./chat.js";
import { bodyTooLarge, sendError, serverError, unknownRoute } from "./errors.js";
import { DEFAULT_MODEL_ID } from "./request.js";

export interface SimServer {
  /** Base URL for an OpenAI client, e.g. `http://127.0.0.1:8090/v1`. */
  url: string;
  port: number;
  close(): Promise<void>;
}

export interface SimServerOptions {
  /** Overrides `config.port`; 0 picks a free port. */
  port?: number;
  host?: string;
  logger?: Logger;
}

const KEEP_ALIVE_TIMEOUT_MS = 65_000;
// Node needs the headers timeout above the keep-alive timeout to not cut reused sockets.
const HEADERS_TIMEOUT_MS = KEEP_ALIVE_TIMEOUT_MS + 1_000;
const MAX_BODY_BYTES = 32 * 1024 * 1024;

const MODELS_BODY = JSON.stringify({
  object: "list",
  data: [{ id: DEFAULT_MODEL_ID, object: "model", created: 0, owned_by: "wunder-farm" }],
});
const HEALTH_BODY = JSON.stringify({ ok: true });

export async function startSimServer(
  config: FarmConfig["sim"],
  opts: SimServerOptions = {},
): Promise<SimServer> {
  const chat = createChatHandler(config, opts.logger);
  const guarded = (res: ServerResponse, work: () => void) => {
    try {
      work();
    } catch (err) {
      opts.logger?.error("sim request failed", { err });
      if (!res.headersSent) sendError(res, serverError());
      else res.destroy();
    }
  };
  const server = createServer((req, res) => {
    guarded(res, () => route(req, res, (body) => guarded(res, () => chat(body, res))));
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HEADERS_TIMEOUT_MS;

  const host = opts.host ?? config.host;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? config.port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Hung and streaming requests would otherwise keep `close` waiting forever.
      server.closeAllConnections();
    });
    return closing;
  };
  return { url: `http://${urlHost(host)}:${port}/v1`, port, close };
}

function route(
  req: IncomingMessage,
  res: ServerResponse,
  onChatBody: (body: string) => void,
): void {
  const url = req.url ?? "/";
  const query = url.indexOf("?");
  const path = query < 0 ? url : url.slice(0, query);
  if (req.method === "POST" && path === "/v1/chat/completions") {
    readBody(req, res, onChatBody);
  } else if (req.method === "GET" && path === "/v1/models") {
    sendJson(res, MODELS_BODY);
  } else if (req.method === "GET" && path === "/healthz") {
    sendJson(res, HEALTH_BODY);
  } else {
    sendError(res, unknownRoute(req.method ?? "GET", path));
  }
}

function readBody(req: IncomingMessage, res: ServerResponse, onBody: (body: string) => void) {
  const chunks: Buffer[] = [];
  let bytes = 0;
  req.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (bytes <= MAX_BODY_BYTES) chunks.push(chunk);
    else if (!res.headersSent) sendError(res, bodyTooLarge(MAX_BODY_BYTES));
  });
  req.on("end", () => {
    if (bytes <= MAX_BODY_BYTES) onBody(Buffer.concat(chunks, bytes).toString("utf8"));
  });
}

function sendJson(res: ServerResponse, body: string): void {
  res.writeHead(200, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(body)),
  });
  res.end(body);
}

/** A wildcard bind is reached through loopback; IPv6 literals need brackets in a URL. */
function urlHost(host: string): string {
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}
