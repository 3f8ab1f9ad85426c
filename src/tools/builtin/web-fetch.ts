/**
 * `web_fetch`: GET one http(s) URL and return its body as text.
 *
 * Invariants:
 * - unless `limits.webFetchAllowPrivate`, only public addresses are contacted: an IP literal in
 *   the URL is checked before any connection, and a host name is checked on the addresses it
 *   resolves to, inside the connection's own `lookup` (so the address checked is the address
 *   connected to, and DNS rebinding between a check and the connect cannot happen);
 * - redirects are followed by hand, at most `MAX_REDIRECTS`, and every hop goes through the same
 *   checks as the first URL;
 * - one deadline (the clamped `timeout_ms`) bounds the whole call, redirects and body included,
 *   and `ctx.signal` aborts it; the connection pool is private to the call and destroyed after it;
 * - at most `max_bytes` of (decompressed) body are read; the rest is never downloaded;
 * - a non-2xx status is ok:false with the response in `data`; 5xx, 408, 429 and connection
 *   failures are `transient` (retried); a timeout is not (a slow site rarely gets faster within
 *   the call's bound), nor is a refused address, a bad URL or a certificate error;
 * - every failure of the remote site is `remote`: it never counts against the `web` breaker,
 *   so one dead site does not cut `web_fetch` off for every turn.
 */
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { LookupFunction } from "node:net";
import { isIP } from "node:net";
import { pipeline, type Readable } from "node:stream";
import { TextDecoder } from "node:util";
import { createBrotliDecompress, createGunzip, createInflate } from "node:zlib";
import { Agent, request } from "undici";
import { z } from "zod";
import type { Tool, ToolContext, ToolOutput } from "../tool.js";
import { nonPublicReason } from "./address-guard.js";
import { ABORTED_ERROR, failure } from "./result.js";
import { trimPartialEnd } from "./utf8.js";

export const MAX_REDIRECTS = 5;
const MAX_URL_CHARS = 8_192;
const MIN_TIMEOUT_MS = 100;
/** Bytes looked at to guess whether a body without a content type is text. */
const SNIFF_BYTES = 1_024;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const TRANSIENT_STATUSES = new Set([408, 429]);
/** Failures that will recur on a retry: the name does not exist, the certificate is bad. */
const PERMANENT_ERROR_CODES = /^(ENOTFOUND|ERR_TLS_.*|.*CERT.*)$/;
const USER_AGENT = "wunder-farm-web-fetch/1";
const TEXT_TYPES = new Set([
  "application/json",
  "application/xml",
  "application/javascript",
  "application/x-javascript",
  "application/ecmascript",
  "application/x-www-form-urlencoded",
  "application/yaml",
  "application/x-yaml",
  "application/toml",
  "application/sql",
  "application/graphql",
  "application/x-sh",
]);
const DECOMPRESSORS: Readonly<Record<string, () => NodeJS.ReadWriteStream>> = {
  gzip: createGunzip,
  "x-gzip": createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

const WebFetchInput = z.object({
  url: z.string().min(1).max(MAX_URL_CHARS).describe("The http:// or https:// URL to GET."),
  max_bytes: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("Read at most this many bytes of the body. Capped by the server's limit (default)."),
  timeout_ms: z
    .number()
    .int()
    .positive()
    .optional()
    .describe("Give up after this many milliseconds. Capped by the server's limit (default)."),
});
type WebFetchArgs = z.infer<typeof WebFetchInput>;

/** The `data` of a `web_fetch` result that got a response. */
export interface WebFetchResult {
  url: string;
  final_url: string;
  status: number;
  content_type: string;
  /** The body as text, or a note saying why it is not shown. */
  body: string;
  truncated: boolean;
  /** Body bytes read (after decompression). */
  bytes: number;
}

/** Why an IP address may not be contacted (a phrase such as "a loopback address"), if so. */
export type AddressPolicy = (ip: string) => string | undefined;

const PUBLIC_ONLY_NOTE = "web_fetch only reaches public addresses";

/** A host name resolved only to refused addresses; raised inside the connection's lookup. */
class RefusedAddressError extends Error {
  override name = "RefusedAddressError";
}

/** `dns.lookup`, minus the addresses `policy` refuses; fails when none is left. */
function guardedLookup(policy: AddressPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, "");
      const allowed = addresses.filter((a) => policy(a.address) === undefined);
      const first = allowed[0];
      if (first === undefined) {
        const refused = addresses[0];
        const why = refused ? `${refused.address}, ${policy(refused.address)}` : "no address";
        return callback(
          new RefusedAddressError(`refused: ${hostname} resolves to ${why}; ${PUBLIC_ONLY_NOTE}`),
          "",
        );
      }
      if (options.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}

/** The refusal for a URL whose host is an IP literal (no lookup happens for those). */
function literalRefusal(url: URL, policy: AddressPolicy): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  if (isIP(host) === 0) return undefined;
  const reason = policy(host);
  return reason === undefined ? undefined : `refused: ${host} is ${reason}; ${PUBLIC_ONLY_NOTE}`;
}

function schemeRefusal(url: URL): string | undefined {
  if (url.protocol === "http:" || url.protocol === "https:") return undefined;
  return `refused: ${url.protocol} URLs cannot be fetched; web_fetch only fetches http and https`;
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string {
  const value = headers[name];
  return (Array.isArray(value) ? value[0] : value) ?? "";
}

function isTextType(mime: string): boolean {
  return (
    mime.startsWith("text/") ||
    mime.endsWith("+json") ||
    mime.endsWith("+xml") ||
    TEXT_TYPES.has(mime)
  );
}

function decode(bytes: Buffer, charset: string, cut: boolean): string {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset || "utf-8");
  } catch {
    decoder = new TextDecoder("utf-8"); // an unknown label: UTF-8 is the best guess
  }
  const isUtf8 = decoder.encoding === "utf-8";
  return decoder.decode(cut && isUtf8 ? trimPartialEnd(bytes) : bytes);
}

/** Up to `maxBytes` of `body`; stops reading (and so downloading) once the cap is passed. */
async function readCapped(
  body: Readable,
  maxBytes: number,
): Promise<{ bytes: Buffer; truncated: boolean }> {
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const room = maxBytes - kept;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    kept += Math.min(chunk.length, room);
    if (chunk.length > room) return { bytes: Buffer.concat(chunks), truncated: true };
  }
  return { bytes: Buffer.concat(chunks), truncated: false };
}

interface FetchedResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/** The response's body as the model sees it, read within `maxBytes`. */
async function bodyOf(
  res: FetchedResponse,
  maxBytes: number,
): Promise<Pick<WebFetchResult, "body" | "truncated" | "bytes">> {
  const contentType = header(res.headers, "content-type");
  const mime = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  if (mime !== "" && !isTextType(mime)) {
    res.body.destroy();
    return { body: `(not shown: ${mime} is not a text content type)`, truncated: false, bytes: 0 };
  }
  const encoding = header(res.headers, "content-encoding").trim().toLowerCase();
  const decompressor = DECOMPRESSORS[encoding];
  if (encoding !== "" && encoding !== "identity" && decompressor === undefined) {
    res.body.destroy();
    return {
      body: `(not shown: unsupported content-encoding ${encoding})`,
      truncated: false,
      bytes: 0,
    };
  }
  // pipeline, not pipe: an error or abort on either side must end the read, not hang it.
  const source = decompressor ? pipeline(res.body, decompressor(), () => {}) : res.body;
  const { bytes, truncated } = await readCapped(source as Readable, maxBytes);
  if (mime === "" && bytes.subarray(0, SNIFF_BYTES).includes(0)) {
    return { body: "(not shown: the body looks binary)", truncated, bytes: bytes.length };
  }
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1] ?? "";
  return { body: decode(bytes, charset, truncated), truncated, bytes: bytes.length };
}

/** The failure for an error thrown by the request or the body read. */
function failureOf(
  err: unknown,
  state: { timedOut: boolean },
  timeoutMs: number,
  ctx: ToolContext,
): ToolOutput {
  if (ctx.signal.aborted) return failure(ABORTED_ERROR);
  if (state.timedOut) return { ...failure(`timed out after ${timeoutMs} ms`), remote: true };
  const refused = [err, (err as Error | undefined)?.cause].find(
    (e) => e instanceof RefusedAddressError,
  );
  if (refused) return failure((refused as Error).message);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!(err instanceof Error) || typeof code !== "string") throw err;
  const transient = !PERMANENT_ERROR_CODES.test(code);
  const detail = err.message.includes(code) ? err.message : `${code}: ${err.message}`;
  return { ...failure(`request failed: ${detail}`), transient, remote: true };
}

async function fetchUrl(
  start: URL,
  args: WebFetchArgs,
  ctx: ToolContext,
  policy: AddressPolicy | undefined,
): Promise<ToolOutput> {
  const { webFetchTimeoutMs, webFetchMaxBytes } = ctx.limits;
  const timeoutMs = Math.min(
    Math.max(args.timeout_ms ?? webFetchTimeoutMs, MIN_TIMEOUT_MS),
    webFetchTimeoutMs,
  );
  const maxBytes = Math.min(args.max_bytes ?? webFetchMaxBytes, webFetchMaxBytes);
  const controller = new AbortController();
  const state = { timedOut: false };
  const timer = setTimeout(() => {
    state.timedOut = true;
    controller.abort();
  }, timeoutMs);
  const onAbort = () => controller.abort();
  ctx.signal.addEventListener("abort", onAbort, { once: true });
  const agent = new Agent(policy ? { connect: { lookup: guardedLookup(policy) } } : {});
  try {
    let url = start;
    for (let redirects = 0; ; redirects++) {
      const refusal = policy && literalRefusal(url, policy);
      if (refusal) return failure(refusal);
      const res = await request(url, {
        dispatcher: agent,
        method: "GET",
        signal: controller.signal,
        headers: {
          "user-agent": USER_AGENT,
          accept: "text/html, application/json, text/plain;q=0.9, */*;q=0.8",
          "accept-encoding": "gzip, deflate, br",
        },
      });
      // Bodies are often dropped unread on purpose (a redirect, the size cap, binary content);
      // undici reports that as an 'error' event, fatal without a listener. Real read errors still
      // reach the reader through its iteration.
      res.body.on("error", () => {});
      const location = header(res.headers, "location");
      if (REDIRECT_STATUSES.has(res.statusCode) && location !== "") {
        res.body.destroy();
        if (redirects === MAX_REDIRECTS) {
          return failure(`too many redirects (more than ${MAX_REDIRECTS})`);
        }
        const next = URL.parse(location, url.href);
        if (next === null) {
          return failure(`redirect to an invalid URL: ${JSON.stringify(location)}`);
        }
        const scheme = schemeRefusal(next);
        if (scheme) return failure(scheme);
        url = next;
        continue;
      }
      const data: WebFetchResult = {
        url: args.url,
        final_url: url.href,
        status: res.statusCode,
        content_type: header(res.headers, "content-type"),
        ...(await bodyOf(res, maxBytes)),
      };
      if (res.statusCode >= 200 && res.statusCode < 300) {
        return { ok: true, data, truncated: data.truncated };
      }
      const transient = res.statusCode >= 500 || TRANSIENT_STATUSES.has(res.statusCode);
      return {
        ok: false,
        data,
        error: `HTTP status ${res.statusCode}`,
        truncated: data.truncated,
        transient,
        remote: true,
      };
    }
  } catch (err) {
    return failureOf(err, state, timeoutMs, ctx);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", onAbort);
    await agent.destroy().catch(() => undefined);
  }
}

/**
 * The tool, with the address policy injectable so tests can allow their own 127.0.0.1 server
 * while still exercising the refusal of every other address.
 */
export function createWebFetchTool(
  basePolicy: AddressPolicy = nonPublicReason,
): Tool<WebFetchArgs> {
  return {
    name: "web_fetch",
    description:
      "Fetch a web page or other http(s) resource with GET and return its body as text, plus the " +
      "status, content type and final URL after redirects. Only public internet addresses are " +
      "reachable. Long bodies are cut at a size limit (`truncated` true); binary content is not " +
      "shown.",
    version: "1",
    kind: "read_only",
    family: "web",
    policy: { idempotent: true },
    input: WebFetchInput,
    async run(args, ctx) {
      if (ctx.signal.aborted) return failure(ABORTED_ERROR);
      const url = URL.parse(args.url);
      if (url === null) return failure(`invalid URL: ${JSON.stringify(args.url)}`);
      const scheme = schemeRefusal(url);
      if (scheme) return failure(scheme);
      return fetchUrl(url, args, ctx, ctx.limits.webFetchAllowPrivate ? undefined : basePolicy);
    },
  };
}

export const webFetchTool = createWebFetchTool();
