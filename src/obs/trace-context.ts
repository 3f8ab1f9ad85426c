/**
 * W3C Trace Context (`traceparent`) for the farm: a request's trace id is taken from its
 * `traceparent` header when valid, else made up; it follows the turn (stored with it), so the
 * API's and the worker's log lines and the turn's events share it.
 *
 * Invariants:
 * - `parseTraceparent` accepts only the W3C format: version `00` (or a later version with at
 *   least the same fields), lowercase hex, trace id and parent id not all zeros;
 * - a made-up trace id is 16 random bytes, never all zeros.
 */
import { randomBytes } from "node:crypto";

export interface TraceContext {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits: the caller's span. */
  parentId: string;
  /** The trace flags byte (`01` sampled). */
  flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The trace context of a `traceparent` header, or null when it is missing or malformed. */
export function parseTraceparent(header: string | undefined): TraceContext | null {
  if (header === undefined) return null;
  const match = TRACEPARENT.exec(header.trim());
  if (!match) return null;
  const [, version, traceId, parentId, flags, rest] = match as unknown as string[];
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  if (/^0+$/.test(traceId as string) || /^0+$/.test(parentId as string)) return null;
  return { traceId: traceId as string, parentId: parentId as string, flags: flags as string };
}

/** The version-00 `traceparent` of a trace context (how the farm stores a caller's span). */
export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.parentId}-${context.flags}`;
}

/** A trace id for a request that came without one. */
export function newTraceId(): string {
  for (;;) {
    const id = randomBytes(16).toString("hex");
    if (!/^0+$/.test(id)) return id;
  }
}
