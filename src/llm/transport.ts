/**
 * The HTTP transport under the OpenAI client: undici's `request` on a shared keep-alive pool,
 * shaped as the small part of `fetch` the client uses (status, headers, text/json, and a body
 * it can iterate). It skips WHATWG web streams, which cost about a third of the CPU of a
 * streamed call on Node 20 (measured: 1.6 ms → 1.1 ms per call with the simulator).
 */
import { Agent, request } from "undici";

/** Sockets kept open per model origin; turns run in parallel, so keep enough to reuse. */
const CONNECTIONS_PER_ORIGIN = 256;
const KEEP_ALIVE_MS = 60_000;

interface FetchInit {
  method?: string;
  headers?: Headers | Record<string, string>;
  body?: string | null;
  signal?: AbortSignal;
}

export class ModelTransport {
  private readonly agent = new Agent({
    connections: CONNECTIONS_PER_ORIGIN,
    keepAliveTimeout: KEEP_ALIVE_MS,
    keepAliveMaxTimeout: KEEP_ALIVE_MS,
  });

  /** A `fetch` for `new OpenAI({ fetch })`. */
  readonly fetch = async (url: string | URL, init: FetchInit = {}) => {
    const headers: Record<string, string> = {};
    if (init.headers instanceof Headers) {
      for (const [key, value] of init.headers) headers[key] = value;
    } else {
      Object.assign(headers, init.headers);
    }
    const res = await request(url, {
      method: (init.method ?? "GET") as "GET" | "POST",
      headers,
      body: init.body ?? null,
      signal: init.signal,
      dispatcher: this.agent,
    });
    const responseHeaders = new Headers();
    for (const [key, value] of Object.entries(res.headers)) {
      if (value !== undefined)
        responseHeaders.set(key, Array.isArray(value) ? value.join(", ") : value);
    }
    return {
      ok: res.statusCode >= 200 && res.statusCode < 300,
      status: res.statusCode,
      statusText: "",
      url: String(url),
      headers: responseHeaders,
      body: res.body,
      text: () => res.body.text(),
      json: () => res.body.json(),
    };
  };

  async close(): Promise<void> {
    await this.agent.close();
  }
}
