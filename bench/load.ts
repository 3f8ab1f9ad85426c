/**
 * The benchmark's clients: virtual users that submit a turn over HTTP, stream its events over
 * SSE until `turn_terminal`, and record when each thing happened. Kept lean (undici, keep-alive,
 * a minimal frame scan), since the driver shares the machine with the farm it measures.
 */
import { Agent, request } from "undici";

export const agent = new Agent({ connections: 1024, keepAliveTimeout: 60_000, pipelining: 1 });

export interface TurnTiming {
  turnId: string;
  /** performance.now() at the submit. */
  submittedAt: number;
  /** submit → response (0 for a streaming submit, where the response is the stream). */
  submitMs: number;
  /** submit → the first event of the turn's stream arrived. */
  firstEventMs: number;
  /** submit → `turn_terminal` arrived. */
  terminalMs: number;
  status: string;
  events: number;
}

export async function submitTurn(apiUrl: string, body: Record<string, unknown>): Promise<string> {
  const res = await request(`${apiUrl}/v1/turns`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode !== 202) throw new Error(`submit answered ${res.statusCode}: ${text}`);
  return (JSON.parse(text) as { turn_id: string }).turn_id;
}

export interface StreamHooks {
  /** Called once per event type the first time it arrives (e.g. to cancel after the first delta). */
  onEvent?(type: string, atMs: number): void;
}

/** How a virtual user runs a turn: one streaming POST, or a POST then a GET of the stream. */
export type TurnFlow = "stream_submit" | "submit_then_stream";

interface StreamedTurn {
  turnId: string;
  firstAt: number;
  terminalAt: number;
  status: string;
  events: number;
}

/** Reads SSE frames until `turn_terminal`; returns when the first and last events came. */
async function readEvents(
  body: AsyncIterable<Buffer> & { destroy(): void },
  turnId: string,
  hooks: StreamHooks,
): Promise<StreamedTurn> {
  let buffer = "";
  let firstAt = 0;
  let events = 0;
  const seen = new Set<string>();
  for await (const chunk of body) {
    buffer += chunk.toString();
    let boundary = buffer.indexOf("\n\n");
    while (boundary >= 0) {
      const frame = buffer.slice(0, boundary);
      buffer = buffer.slice(boundary + 2);
      boundary = buffer.indexOf("\n\n");
      const typeAt = frame.indexOf("\nevent: ");
      if (typeAt < 0) continue;
      const now = performance.now();
      events++;
      if (firstAt === 0) firstAt = now;
      const type = frame.slice(typeAt + 8, frame.indexOf("\n", typeAt + 8));
      if (!seen.has(type)) {
        seen.add(type);
        hooks.onEvent?.(type, now);
      }
      if (type === "turn_terminal") {
        const status = /"data":\{"status":"([a-z]+)"/.exec(frame)?.[1] ?? "unknown";
        body.destroy();
        return { turnId, firstAt, terminalAt: now, status, events };
      }
    }
  }
  throw new Error(`stream of ${turnId} ended without turn_terminal`);
}

async function streamExisting(apiUrl: string, turnId: string, hooks: StreamHooks) {
  const res = await request(`${apiUrl}/v1/turns/${turnId}/events`, {
    dispatcher: agent,
    headers: { accept: "text/event-stream" },
  });
  if (res.statusCode !== 200) throw new Error(`stream answered ${res.statusCode}`);
  return readEvents(res.body, turnId, hooks);
}

async function submitStreaming(
  apiUrl: string,
  body: Record<string, unknown>,
  hooks: (turnId: string) => StreamHooks,
) {
  const res = await request(`${apiUrl}/v1/turns`, {
    method: "POST",
    dispatcher: agent,
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body: JSON.stringify(body),
  });
  const turnId = String(res.headers["x-turn-id"] ?? "");
  if (res.statusCode !== 200 || !turnId) {
    throw new Error(`streaming submit answered ${res.statusCode}: ${await res.body.text()}`);
  }
  return readEvents(res.body, turnId, hooks(turnId));
}

/** Runs one turn the given way; times are relative to the submit. */
export async function runTurn(
  apiUrl: string,
  body: Record<string, unknown>,
  flow: TurnFlow,
  hooks: (turnId: string) => StreamHooks = () => ({}),
): Promise<TurnTiming> {
  const submittedAt = performance.now();
  let submitMs = 0;
  let streamed: StreamedTurn;
  if (flow === "stream_submit") {
    streamed = await submitStreaming(apiUrl, body, hooks);
  } else {
    const turnId = await submitTurn(apiUrl, body);
    submitMs = performance.now() - submittedAt;
    streamed = await streamExisting(apiUrl, turnId, hooks(turnId));
  }
  return {
    turnId: streamed.turnId,
    submittedAt,
    submitMs,
    firstEventMs: streamed.firstAt - submittedAt,
    terminalMs: streamed.terminalAt - submittedAt,
    status: streamed.status,
    events: streamed.events,
  };
}

/** `concurrency` virtual users run `total` turns between them, each starting the next when done. */
export async function runUsers(
  concurrency: number,
  total: number,
  turn: (index: number) => Promise<TurnTiming>,
  onDone?: (done: number) => void,
): Promise<TurnTiming[]> {
  const results: TurnTiming[] = [];
  let next = 0;
  const user = async () => {
    while (next < total) {
      const index = next++;
      results.push(await turn(index));
      onDone?.(results.length);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, user));
  return results;
}
