/**
 * The simulator's HTTP server: plain `node:http` (it must stay cheap at hundreds of requests per
 * second), OpenAI-shaped errors for everything else. Routes:
 * - `POST /v1/chat/completions`, `GET /v1/models`, `GET /healthz`: the OpenAI-compatible API;
 * - `/sim/faults`: the runtime fault switch (fault-switch.ts), a control for tests and benchmarks.
 *   `POST` with `{"model": "<provider model id, or *>", "rate429": 0..1, "retryAfterS": n}`
 *   (Retry-After defaults to 1 s) makes that share of the model's chat requests answer 429 with
 *   `Retry-After: n` until cleared; `rate429: 0` or `DELETE /sim/faults?model=<id>` clears one
 *   rule, `DELETE /sim/faults` all; `GET` lists them. Each answers `{"faults": [rules]}`. The
 *   model is matched on the request body's `model`, so two farm models served by one simulator
 *   can fail apart. Like the rest of the simulator it has no authentication: bind it to loopback.
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
import { bodyTooLarge, invalidRequest, sendError, serverError, unknownRoute } from "./errors.js";
import { FaultSwitch, parseFaultRule } from "./fault-switch.js";
import { DEFAULT_RETRY_AFTER_S } from "./faults.js";
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
const FAULTS_PATH = "/sim/faults";

export async function startSimServer(
  config: FarmConfig["sim"],
  opts: SimServerOptions = {},
): Promise<SimServer> {
  const faultSwitch = new FaultSwitch(config.seed);
  const chat = createChatHandler(config, opts.logger, faultSwitch);
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
    guarded(res, () => route(req, res, faultSwitch, (body) => guarded(res, () => chat(body, res))));
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
  faultSwitch: FaultSwitch,
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
  } else if (path === FAULTS_PATH && req.method === "POST") {
    readBody(req, res, (body) => {
      const rule = parseFaultRule(body, DEFAULT_RETRY_AFTER_S);
      if ("message" in rule) return sendError(res, invalidRequest(rule.message, rule.param));
      faultSwitch.set(rule);
      sendFaults(res, faultSwitch);
    });
  } else if (path === FAULTS_PATH && req.method === "DELETE") {
    const model = new URLSearchParams(query < 0 ? "" : url.slice(query + 1)).get("model");
    faultSwitch.clear(model ?? undefined);
    sendFaults(res, faultSwitch);
  } else if (path === FAULTS_PATH && req.method === "GET") {
    sendFaults(res, faultSwitch);
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

function sendFaults(res: ServerResponse, faultSwitch: FaultSwitch): void {
  sendJson(res, JSON.stringify({ faults: faultSwitch.list() }));
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
