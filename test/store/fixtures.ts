/**
 * Builders for store contract tests: turns, idempotency claims, events and outcomes with
 * defaults a test overrides only where it matters.
 */
import type { ContextMessage } from "../../src/context/message.js";
import type { IdempotencyClaim, NewTurn, StoredEvent, TurnOutcome } from "../../src/store/port.js";

export const USER_A = "user-a";
export const USER_B = "user-b";

/** Far enough in the future that no test's clock reaches it. */
export const NEVER_EXPIRES_AT_MS = 10_000_000_000_000;

let turnCounter = 0;

export function newTurn(overrides: Partial<NewTurn> = {}): NewTurn {
  turnCounter += 1;
  return {
    id: `turn-${turnCounter}`,
    sessionId: "session-1",
    userId: USER_A,
    input: `input ${turnCounter}`,
    model: "sim",
    tools: ["read_file", "run_command"],
    metadata: { source: "test", n: turnCounter },
    createdAt: 1_000,
    ...overrides,
  };
}

export function claim(key: string, overrides: Partial<IdempotencyClaim> = {}): IdempotencyClaim {
  return { key, requestHash: `hash-of-${key}`, expiresAt: NEVER_EXPIRES_AT_MS, ...overrides };
}

export function completed(overrides: Partial<TurnOutcome> = {}): TurnOutcome {
  return {
    status: "completed",
    finishedAt: 5_000,
    answer: "done",
    stopReason: "stop",
    usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15, context_tokens: 12 },
    error: null,
    ...overrides,
  };
}

export const DAY_MS = 86_400_000;
/** 2026-01-05 00:00 UTC, a Monday: days after it fall in buckets 20260105, 20260106… */
export const MONDAY_MS = Date.UTC(2026, 0, 5);

/**
 * An event whose envelope text has deliberate spacing, so byte-exact storage is visible.
 * `ts` defaults to a time in bucket 19700101.
 */
export function storedEvent(
  sessionId: string,
  seq: number,
  turnId = "turn-x",
  ts = 1_000 + seq,
): StoredEvent {
  return {
    sessionId,
    seq,
    turnId,
    type: "progress",
    ts,
    envelope: `{"v":1, "seq":${seq},"session_id":"${sessionId}","turn_id":"${turnId}","type":"progress","ts":${ts},"data":{}}`,
  };
}

export function seqRange(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export const SAMPLE_HISTORY: ContextMessage[] = [
  { role: "user", content: "list the files" },
  {
    role: "assistant",
    content: "",
    tool_calls: [{ id: "call-1", name: "run_command", arguments: '{"command":"ls"}' }],
  },
  { role: "tool", tool_call_id: "call-1", content: "a.txt\nb.txt" },
  { role: "assistant", content: "There are two files." },
];
