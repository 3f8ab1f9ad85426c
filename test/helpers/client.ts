/**
 * A small HTTP client for the farm API as a user sees it: submit, poll, page events, and an SSE
 * reader that parses frames and can be cut off mid-stream to test resume.
 */
import type { QueueOverview } from "../../src/contract/admin.js";
import type { EventEnvelope } from "../../src/events/envelope.js";

export interface HttpReply<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
}

export async function http<T = unknown>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<HttpReply<T>> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

export interface Accepted {
  turn_id: string;
  session_id: string;
  status: string;
}

export interface TurnView {
  turn_id: string;
  session_id: string;
  status: string;
  answer?: string;
  stop_reason?: string;
  attempt: number;
  kind?: string;
  usage?: {
    input_tokens: number;
    output_tokens: number;
    total_tokens: number;
    context_tokens: number;
    context_window_tokens?: number;
    model_calls?: number;
    compaction_tokens?: number;
  };
  error?: { code: string; message: string; retryable: boolean };
  last_seq: number;
}

export async function submit(
  base: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Accepted> {
  const reply = await http<Accepted>(base, "POST", "/v1/turns", body, headers);
  if (reply.status !== 202)
    throw new Error(`submit failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}

const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export async function waitForTurn(
  base: string,
  turnId: string,
  timeoutMs = 20_000,
): Promise<TurnView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await http<TurnView>(base, "GET", `/v1/turns/${turnId}`);
    if (TERMINAL.has(reply.body.status)) return reply.body;
    if (Date.now() > deadline)
      throw new Error(`turn ${turnId} still ${reply.body.status} after ${timeoutMs} ms`);
    await sleep(20);
  }
}

export async function waitForStatus(
  base: string,
  turnId: string,
  status: string,
  timeoutMs = 10_000,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const reply = await http<TurnView>(base, "GET", `/v1/turns/${turnId}`);
    if (reply.body.status === status) return reply.body;
    if (Date.now() > deadline) throw new Error(`turn ${turnId} never reached ${status}`);
    await sleep(10);
  }
}

export interface SseFrame {
  id: number;
  event: string;
  data: EventEnvelope;
}

export interface SseRead {
  status: number;
  frames: SseFrame[];
  /** True when the server closed the stream (rather than the reader stopping early). */
  ended: boolean;
}

/**
 * Reads a turn's event stream. Stops after `maxFrames` frames (the connection is then cut, as a
 * dropped client would) or when the server ends the stream.
 */
export async function readStream(
  base: string,
  turnId: string,
  options: { lastEventId?: number; after?: number; maxFrames?: number; timeoutMs?: number } = {},
): Promise<SseRead> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 20_000);
  const query = options.after !== undefined ? `?after=${options.after}` : "";
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (options.lastEventId !== undefined) headers["last-event-id"] = String(options.lastEventId);
  const frames: SseFrame[] = [];
  try {
    const res = await fetch(`${base}/v1/turns/${turnId}/events${query}`, {
      headers,
      signal: controller.signal,
    });
    if (res.status !== 200 || !res.body) return { status: res.status, frames, ended: true };
    const decoder = new TextDecoder();
    let buffer = "";
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let boundary = buffer.indexOf("\n\n");
      while (boundary >= 0) {
        const frame = parseFrame(buffer.slice(0, boundary));
        buffer = buffer.slice(boundary + 2);
        if (frame) {
          frames.push(frame);
          if (options.maxFrames !== undefined && frames.length >= options.maxFrames) {
            controller.abort();
            return { status: 200, frames, ended: false };
          }
        }
        boundary = buffer.indexOf("\n\n");
      }
    }
    return { status: 200, frames, ended: true };
  } catch (err) {
    if (controller.signal.aborted && options.maxFrames === undefined)
      throw new Error("stream read timed out");
    if (!controller.signal.aborted) throw err;
    return { status: 200, frames, ended: false };
  } finally {
    clearTimeout(timer);
  }
}

function parseFrame(block: string): SseFrame | null {
  let id: number | null = null;
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":") || line === "") continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") id = Number(value);
    else if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (id === null || data.length === 0) return null;
  return { id, event, data: JSON.parse(data.join("\n")) as EventEnvelope };
}

/** Every event of the turn, from the JSON pages, after it ended. */
export async function allTurnEvents(base: string, turnId: string): Promise<EventEnvelope[]> {
  const events: EventEnvelope[] = [];
  let after: number | undefined;
  for (;;) {
    const query = `?format=json&limit=1000${after !== undefined ? `&after=${after}` : ""}`;
    const page = await http<{ events: EventEnvelope[]; next_after: number; has_more: boolean }>(
      base,
      "GET",
      `/v1/turns/${turnId}/events${query}`,
    );
    events.push(...page.body.events);
    if (!page.body.has_more) return events;
    if (page.body.events.length === 0) await sleep(20);
    after = page.body.next_after;
  }
}

/** A turn input that streams far longer than any test waits: it runs until it is cancelled. */
export const SLOW_TURN_INPUT = "[[sim token_delay_ms=50 reply_tokens=1000]] take your time";

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls the turn's events until `done` says so (at most about 10 s). */
export async function waitForEvents(
  base: string,
  turnId: string,
  done: (events: EventEnvelope[]) => boolean,
): Promise<EventEnvelope[]> {
  for (let i = 0; i < 1000; i++) {
    const page = await http<{ events: EventEnvelope[] }>(
      base,
      "GET",
      `/v1/turns/${turnId}/events?format=json&limit=1000`,
    );
    if (done(page.body.events)) return page.body.events;
    await sleep(10);
  }
  throw new Error(`the awaited events of ${turnId} never arrived`);
}

/** The error envelope every refused request carries. */
export interface ErrorBody {
  error: { code: string; message: string; retryable: boolean; details?: unknown };
}

/** Cancels the turns (in parallel) and ignores the answers: test cleanup, so farms stop fast. */
export async function cancelTurns(base: string, turnIds: Iterable<string>): Promise<void> {
  await Promise.all(
    [...turnIds].map((id) => http(base, "POST", `/v1/turns/${id}/cancel`).catch(() => undefined)),
  );
}

/** Polls `check` every `everyMs` until it holds; throws naming `what` after `timeoutMs`. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** `GET /v1/admin/queues` (the test client is local, so no token is needed). */
export async function adminQueues(base: string): Promise<QueueOverview> {
  const reply = await http<QueueOverview>(base, "GET", "/v1/admin/queues");
  if (reply.status !== 200)
    throw new Error(`admin queues failed: ${reply.status} ${JSON.stringify(reply.body)}`);
  return reply.body;
}
