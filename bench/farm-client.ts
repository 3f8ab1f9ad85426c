/**
 * The benchmark's control calls to a running farm, beside the turn load of load.ts: read a turn,
 * cancel one, watch the scheduler's queues (`GET /v1/admin/queues`, open to loopback clients)
 * and flip the simulator's runtime fault switch (`/sim/faults`).
 */
import { request } from "undici";
import { agent, type TurnTiming } from "./load.js";

export interface TurnState {
  turn_id: string;
  user_id: string;
  status: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  attempt: number;
}

async function json<T>(url: string, method: "GET" | "POST" | "DELETE", body?: unknown): Promise<T> {
  const res = await request(url, {
    method,
    dispatcher: agent,
    ...(body === undefined
      ? {}
      : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  });
  const text = await res.body.text();
  if (res.statusCode >= 300)
    throw new Error(`${method} ${url} answered ${res.statusCode}: ${text}`);
  return JSON.parse(text) as T;
}

export function getTurn(apiUrl: string, turnId: string): Promise<TurnState> {
  return json<TurnState>(`${apiUrl}/v1/turns/${turnId}`, "GET");
}

export function cancelTurn(apiUrl: string, turnId: string): Promise<TurnState> {
  return json<TurnState>(`${apiUrl}/v1/turns/${turnId}/cancel`, "POST");
}

/** created_at → started_at of a turn as the farm recorded them (ms), or NaN if it never started. */
export function serverWaitMs(turn: TurnState): number {
  if (!turn.started_at) return Number.NaN;
  return Date.parse(turn.started_at) - Date.parse(turn.created_at);
}

export interface QueueCounts {
  waiting: number;
  dispatched: number;
  active: number;
  parked: number;
}

export async function queueCounts(apiUrl: string): Promise<QueueCounts> {
  const view = await json<{ counts: QueueCounts }>(`${apiUrl}/v1/admin/queues`, "GET");
  return view.counts;
}

/** Waits until no turn waits, is dispatched, runs or is parked. */
export async function waitIdle(apiUrl: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = await queueCounts(apiUrl);
    if (c.waiting + c.dispatched + c.active + c.parked === 0) return;
    if (Date.now() > deadline) throw new Error(`farm still busy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `work` over the items with at most `concurrency` at a time; results in item order. */
export async function pooled<T, R>(
  items: readonly T[],
  concurrency: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
  return results;
}

/**
 * Keeps `outstanding` turns in flight (each started as the previous one of its lane ends) until
 * `running()` turns false; the lanes then let their last turn finish. A turn that errors (e.g. a
 * refused submit) is counted, not thrown.
 */
export async function keepOutstanding(
  outstanding: number,
  turn: () => Promise<TurnTiming>,
  running: () => boolean,
  onDone: (timing: TurnTiming) => void,
  onError: (err: Error) => void,
): Promise<void> {
  const lane = async () => {
    while (running()) {
      try {
        onDone(await turn());
      } catch (err) {
        onError(err as Error);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  await Promise.all(Array.from({ length: outstanding }, lane));
}

/** Sets the simulator's 429 rule for a provider model id (or "*"); rate 0 clears it. */
export async function setSimFault(
  simUrl: string,
  rule: { model: string; rate429: number; retryAfterS?: number },
): Promise<void> {
  await json(`${simUrl}/sim/faults`, "POST", rule);
}

export async function clearSimFaults(simUrl: string): Promise<void> {
  await json(`${simUrl}/sim/faults`, "DELETE");
}
