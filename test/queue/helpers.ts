/**
 * Shared bits of the queue-layer tests: a private Redis key prefix per spec file, and turn
 * records built with defaults a test overrides only where it matters.
 */
import type { TurnRecord } from "../../src/store/port.js";

/** A key prefix no other test file (or farm) uses; everything under it is deleted in `after`. */
export function testPrefix(name: string): string {
  return `test-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

let counter = 0;

/** A fresh id per call, so tests in one file never share sessions or turns. */
export function uniqueId(kind: string): string {
  counter += 1;
  return `${kind}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
}

export function turnRecord(overrides: Partial<TurnRecord> = {}): TurnRecord {
  return {
    id: uniqueId("turn"),
    sessionId: uniqueId("sess"),
    userId: "user-q",
    status: "queued",
    kind: "agent",
    traceId: null,
    traceParent: null,
    input: "hello",
    model: "sim",
    tools: [],
    metadata: null,
    idempotencyKey: null,
    createdAt: Date.now(),
    startedAt: null,
    finishedAt: null,
    attempt: 0,
    answer: null,
    stopReason: null,
    usage: null,
    error: null,
    firstSeq: null,
    lastSeq: null,
    ...overrides,
  };
}
