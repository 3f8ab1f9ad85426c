/**
 * Reads a session's event log as one gap-free sequence, from wherever each event is right now:
 * the hot Redis stream (recent, not yet or just persisted) or the store (everything persisted).
 *
 * Invariant: `read` returns consecutive seqs starting at `after + 1`, or fewer than asked for —
 * never a sequence with a hole. An event that is neither in the hot stream (trimmed) nor in the
 * store yet (persister lag) ends the batch early; the caller asks again later.
 */
import type { Redis } from "ioredis";
import type { RedisKeys } from "../redis/keys.js";
import type { Store, StoredEvent } from "../store/port.js";
import type { EventType } from "./envelope.js";
import { checkEnvelopeText, checkEnvelopeVersion } from "./schema-version.js";

export interface LogEvent {
  seq: number;
  turnId: string;
  type: EventType;
  /** The envelope JSON exactly as appended. */
  envelope: string;
}

interface EnvelopeColumns {
  v: unknown;
  session_id: string;
  seq: number;
  turn_id: string;
  type: EventType;
  ts: number;
}

/**
 * Parses one envelope line (hot stream entry, live message line, stored row) for a reader;
 * throws UnsupportedSchemaVersionError for an envelope version this build cannot read.
 */
export function parseEnvelopeLine(envelope: string): LogEvent {
  const parsed = JSON.parse(envelope) as EnvelopeColumns;
  checkEnvelopeVersion(parsed.v);
  return { seq: parsed.seq, turnId: parsed.turn_id, type: parsed.type, envelope };
}

/**
 * The store row of one envelope line: its bytes as they are, plus the columns it is found by.
 * No version check: storing never interprets `data`, and the persister must keep whatever a
 * newer emitter wrote during a rolling upgrade (readers check when they read).
 */
export function storedEventOf(envelope: string): StoredEvent {
  const e = JSON.parse(envelope) as EnvelopeColumns;
  return {
    sessionId: e.session_id,
    seq: e.seq,
    turnId: e.turn_id,
    type: e.type,
    ts: e.ts,
    envelope,
  };
}

export class EventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly store: Store,
  ) {}

  async read(sessionId: string, after: number, limit: number): Promise<LogEvent[]> {
    const hot = await this.readHot(sessionId, after, limit);
    if (hot[0]?.seq === after + 1) return hot;

    const stored = await this.store.readEvents(sessionId, after, limit);
    const events: LogEvent[] = [];
    let expected = after + 1;
    for (const row of stored) {
      if (row.seq !== expected) break;
      checkEnvelopeText(row.envelope);
      events.push({
        seq: row.seq,
        turnId: row.turnId,
        type: row.type as EventType,
        envelope: row.envelope,
      });
      expected++;
    }
    // The hot stream holds a contiguous suffix; splice it on where the store stops.
    for (const event of hot) {
      if (events.length >= limit) break;
      if (event.seq === expected) {
        events.push(event);
        expected++;
      } else if (event.seq > expected) {
        break;
      }
    }
    return events;
  }

  /** The highest seq assigned in the session so far (0 when none is known). */
  async headSeq(sessionId: string): Promise<number> {
    const value = await this.redis.get(this.keys.sessionSeq(sessionId));
    if (value !== null) return Number.parseInt(value, 10);
    return this.store.maxSeq(sessionId);
  }

  private async readHot(sessionId: string, after: number, limit: number): Promise<LogEvent[]> {
    const entries = await this.redis.xrange(
      this.keys.sessionEvents(sessionId),
      `${after + 1}-0`,
      "+",
      "COUNT",
      limit,
    );
    return entries.map(([, fields]) => parseEnvelopeLine(fields[1] as string));
  }
}
