/**
 * Appends events of one turn to the session log through the append script, and rebuilds a
 * session's sequence counter when Redis no longer has it.
 *
 * Invariants:
 * - the counter is only ever (re)initialised with `SET NX` to the highest seq known in the store
 *   or the hot stream, so a rebuilt counter reuses no seq — provided the persister is less than
 *   the counter's TTL (an hour after a session's last event) behind;
 * - a FENCED reply surfaces as `LeaseLostError`; nothing was appended.
 */
import type { Redis } from "ioredis";
import { Histogram } from "prom-client";
import type { FarmConfig } from "../config/schema.js";
import { metricsRegistry } from "../obs/metrics.js";
import type { RedisKeys } from "../redis/keys.js";
import { defineScript, type RedisScript } from "../redis/script.js";
import type { Store } from "../store/port.js";
import { APPEND_EVENTS_LUA } from "./append-script.js";
import { ENVELOPE_VERSION, type EventType } from "./envelope.js";

const hotStreamLength = new Histogram({
  name: "farm_hot_stream_length_entries",
  help: "A session's hot Redis stream length after each append (trimmed near events.hotStreamMaxLen)",
  buckets: [10, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000],
  registers: [metricsRegistry],
});

/** The start of every envelope; the append script writes the same bytes (`append-script.ts`). */
const ENVELOPE_PREFIX = `{"v":${ENVELOPE_VERSION},"seq":`;
/** The step hash outlives a finished turn only long enough to absorb late retries. */
const STEPS_TTL_AFTER_TERMINAL_MS = 60_000;
/** While a turn may still run, its steps and hot stream stay. */
const RUNNING_TTL_MS = 24 * 3600_000;

export class LeaseLostError extends Error {
  constructor(turnId: string) {
    super(`turn ${turnId}: session lease lost; another worker owns the turn`);
    this.name = "LeaseLostError";
  }
}

export interface EventTarget {
  sessionId: string;
  turnId: string;
  userId: string;
  traceId?: string;
}

export interface PendingEvent {
  type: EventType;
  /** Idempotency key, unique within the turn (e.g. `r2.llm_output`). */
  step: string;
  ts: number;
  data: Record<string, unknown>;
}

export interface AppendOptions {
  /** Lease value the appender must still hold (`<turn>:<token>`); omitted for API-side events. */
  fence?: string;
  /** The batch ends the turn: the step hash and hot stream start their short expiry. */
  terminal?: boolean;
  /** The store has just created the session: it has no events anywhere, so seq starts at 0. */
  newSession?: boolean;
}

export class EventAppender {
  private readonly append: RedisScript<number[]>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly store: Store,
    private readonly settings: FarmConfig["events"],
  ) {
    this.append = defineScript(redis, "farmAppendEvents", 6, APPEND_EVENTS_LUA);
  }

  /** Appends the batch in order and returns the seq of each event (new or already appended). */
  async appendBatch(
    target: EventTarget,
    events: PendingEvent[],
    options: AppendOptions = {},
  ): Promise<number[]> {
    const { signed } = await this.run(target, events, options);
    return signed.map(Math.abs);
  }

  /**
   * Like `appendBatch`, and also returns each event's envelope as appended — or null for an
   * event that was already in the log (its stored bytes are the earlier ones).
   */
  async appendWithEnvelopes(
    target: EventTarget,
    events: PendingEvent[],
    options: AppendOptions = {},
  ): Promise<{ seqs: number[]; envelopes: (string | null)[] }> {
    const { signed, tails } = await this.run(target, events, options);
    return {
      seqs: signed.map(Math.abs),
      envelopes: signed.map((seq, i) => (seq > 0 ? `${ENVELOPE_PREFIX}${seq}${tails[i]}` : null)),
    };
  }

  /** Runs the script; `signed` holds +seq for appended events and −seq for earlier ones. */
  private async run(
    target: EventTarget,
    events: PendingEvent[],
    options: AppendOptions,
  ): Promise<{ signed: number[]; tails: string[] }> {
    if (events.length === 0) return { signed: [], tails: [] };
    const head = envelopeHead(target);
    const tails = events.map(
      (event) =>
        `${head},"type":"${event.type}","ts":${event.ts},"data":${JSON.stringify(event.data)}}`,
    );
    const args: (string | number)[] = [
      options.fence ?? "",
      this.settings.hotStreamMaxLen,
      this.settings.seqTtlS * 1000,
      options.terminal ? STEPS_TTL_AFTER_TERMINAL_MS : RUNNING_TTL_MS,
      options.terminal ? this.settings.hotStreamTtlAfterTerminalS * 1000 : RUNNING_TTL_MS,
      options.newSession ? "new" : "",
      events.length,
    ];
    events.forEach((event, i) => {
      args.push(event.step, tails[i] as string);
    });
    const k = this.keys;
    const call = () =>
      this.append(
        k.sessionSeq(target.sessionId),
        k.sessionEvents(target.sessionId),
        k.turnSteps(target.turnId),
        k.sessionLease(target.sessionId),
        k.persistStream,
        k.sessionLive(target.sessionId),
        ...args,
      );
    const seqsOf = (reply: number[]) => {
      const length = reply.pop() as number;
      // Only batches that appended: a replay of events already there says nothing new.
      if (reply.some((seq) => seq > 0)) hotStreamLength.observe(length);
      return reply;
    };
    try {
      return { signed: seqsOf(await call()), tails };
    } catch (err) {
      const message = (err as Error).message ?? "";
      if (message.includes("FENCED")) throw new LeaseLostError(target.turnId);
      if (!message.includes("SEQ_UNINITIALISED")) throw err;
      await this.rebuildSeq(target.sessionId);
      return { signed: seqsOf(await call()), tails };
    }
  }

  private async rebuildSeq(sessionId: string): Promise<void> {
    const [stored, newest] = await Promise.all([
      this.store.maxSeq(sessionId),
      this.redis.xrevrange(this.keys.sessionEvents(sessionId), "+", "-", "COUNT", 1),
    ]);
    const hotId = newest[0]?.[0];
    const hot = hotId ? Number.parseInt(hotId, 10) : 0;
    await this.redis.set(
      this.keys.sessionSeq(sessionId),
      Math.max(stored, hot),
      "PX",
      this.settings.seqTtlS * 1000,
      "NX",
    );
  }
}

function envelopeHead(target: EventTarget): string {
  const trace = target.traceId ? `,"trace_id":${JSON.stringify(target.traceId)}` : "";
  return `,"session_id":${JSON.stringify(target.sessionId)},"turn_id":${JSON.stringify(target.turnId)},"user_id":${JSON.stringify(target.userId)}${trace}`;
}
