/**
 * The live view of running turns behind `GET /v1/admin/monitor` (wunder's monitor): each worker
 * publishes what its turn attempts are doing (turn-activity.ts) to Redis; the API reads it back.
 *
 * Layout: one JSON entry per turn attempt (`monitorEntry`, with a TTL) and an index sorted set
 * (`monitorIndex`) scoring each attempt by the time its entry expires.
 *
 * Invariants:
 * - bounded cost: an attempt writes at most once per FLUSH_INTERVAL_MS however many events or
 *   deltas it emits (one MULTI: SET + ZADD), and once per HEARTBEAT_MS while nothing changes, so
 *   its entry and index score stay ahead of their expiry;
 * - writes of one attempt are chained, and closing it (every way a run ends: the emitter is
 *   disposed) cancels its pending write and removes the entry after any write in flight, so a
 *   late write cannot bring it back;
 * - a killed worker's entries expire after ENTRY_TTL_MS; the reader ignores index members past
 *   their score and prunes them, so the index does not grow with crashes;
 * - entries are keyed per attempt: a hand-back's closing delete cannot remove the next attempt's;
 * - publishing never fails a turn: a Redis error costs one missed update (logged at debug level,
 *   since an outage would otherwise log once per turn per interval; the turn itself reports it).
 */
import { hostname } from "node:os";
import type { ChainableCommander, Redis } from "ioredis";
import { z } from "zod";
import {
  MONITOR_STAGES,
  type MonitoredTurn,
  MonitoredTurnSchema,
  type MonitorStage,
  type TurnMonitorView,
} from "../contract/admin.js";
import type { EventType } from "../events/envelope.js";
import type { EmitObserver } from "../events/turn-emitter.js";
import type { RedisKeys } from "../redis/keys.js";
import type { TurnRecord } from "../store/port.js";
import type { Logger } from "./logger.js";
import { TurnActivity } from "./turn-activity.js";

const FLUSH_INTERVAL_MS = 500;
const HEARTBEAT_MS = 3_000;
/** Three heartbeats: one missed write (a slow Redis, a GC pause) does not drop a live turn. */
const ENTRY_TTL_MS = 10_000;

/** What a worker stores: the view without read-time figures, times as epoch ms. */
const EntrySchema = MonitoredTurnSchema.omit({
  elapsed_ms: true,
  stage_elapsed_ms: true,
  started_at: true,
  updated_at: true,
}).extend({
  started_at_ms: z.number(),
  stage_since_ms: z.number(),
  updated_at_ms: z.number(),
});
type Entry = z.infer<typeof EntrySchema>;

/** One per worker process: hands each turn attempt its publishing observer. */
export class TurnMonitor {
  private readonly worker = { id: `${hostname()}:${process.pid}`, host: hostname() };

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
  ) {}

  /** Starts publishing the attempt now; the observer's `close` takes it off the monitor. */
  track(turn: TurnRecord): EmitObserver {
    return new PublishedAttempt(this.redis, this.keys, this.logger, {
      turn,
      worker: this.worker,
    });
  }
}

class PublishedAttempt implements EmitObserver {
  private readonly activity: TurnActivity;
  private readonly startedAt = Date.now();
  private readonly attemptId: string;
  private timer: NodeJS.Timeout | null = null;
  private dueAt = Number.POSITIVE_INFINITY;
  private lastWriteAt = Number.NEGATIVE_INFINITY;
  private writes: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly logger: Logger,
    private readonly who: { turn: TurnRecord; worker: { id: string; host: string } },
  ) {
    this.activity = new TurnActivity(who.turn.kind, this.startedAt);
    this.attemptId = `${who.turn.id}.${who.turn.attempt}`;
    this.wake(this.startedAt);
  }

  event(type: EventType, data: Record<string, unknown>, at: number): void {
    if (this.closed) return;
    this.activity.event(type, data, at);
    this.wake(this.lastWriteAt + FLUSH_INTERVAL_MS);
  }

  text(text: string, at: number): void {
    if (this.closed) return;
    this.activity.text(text, at);
    this.wake(this.lastWriteAt + FLUSH_INTERVAL_MS);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.chain((multi) =>
      multi
        .del(this.keys.monitorEntry(this.attemptId))
        .zrem(this.keys.monitorIndex, this.attemptId),
    );
  }

  /** Makes sure a write happens by `atMs` (an earlier planned write stands). */
  private wake(atMs: number): void {
    if (this.closed || atMs >= this.dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = atMs;
    this.timer = setTimeout(() => this.publish(), Math.max(0, atMs - Date.now()));
    // A monitor write is no reason to keep a stopping process alive.
    this.timer.unref();
  }

  private publish(): void {
    this.timer = null;
    this.dueAt = Number.POSITIVE_INFINITY;
    const now = Date.now();
    this.lastWriteAt = now;
    const expiresAt = now + ENTRY_TTL_MS;
    const json = JSON.stringify(this.entry(now));
    this.chain((multi) =>
      multi
        .set(this.keys.monitorEntry(this.attemptId), json, "PX", ENTRY_TTL_MS)
        .zadd(this.keys.monitorIndex, expiresAt, this.attemptId)
        // Crashed workers' members go even if nobody reads the monitor; idle, the index expires.
        .zremrangebyscore(this.keys.monitorIndex, "-inf", now)
        .pexpire(this.keys.monitorIndex, ENTRY_TTL_MS),
    );
    this.wake(now + HEARTBEAT_MS);
  }

  private entry(now: number): Entry {
    const { turn, worker } = this.who;
    return {
      turn_id: turn.id,
      session_id: turn.sessionId,
      user_id: turn.userId,
      kind: turn.kind,
      model: turn.model,
      attempt: turn.attempt,
      trace_id: turn.traceId,
      worker,
      started_at_ms: this.startedAt,
      updated_at_ms: now,
      ...this.activity.snapshot(),
    };
  }

  private chain(build: (multi: ChainableCommander) => ChainableCommander): void {
    this.writes = this.writes
      .then(async () => {
        await build(this.redis.multi()).exec();
      })
      .catch((err: Error) => {
        this.logger.debug("turn monitor update failed", {
          turn_id: this.who.turn.id,
          error: err.message,
        });
      });
  }
}

/** The running turn attempts live workers report, longest running first. */
export async function readTurnMonitor(
  redis: Redis,
  keys: RedisKeys,
  now = Date.now(),
): Promise<TurnMonitorView> {
  const [, live] = (await redis
    .multi()
    .zremrangebyscore(keys.monitorIndex, "-inf", now)
    .zrangebyscore(keys.monitorIndex, now, "+inf")
    .exec()) as [unknown, [Error | null, string[]]];
  const ids = live[1] ?? [];
  const raw = ids.length > 0 ? await redis.mget(ids.map((id) => keys.monitorEntry(id))) : [];
  const turns = raw
    .map((text) => parseEntry(text))
    .filter((entry): entry is Entry => entry !== null)
    .map((entry) => view(entry, now))
    .sort((a, b) => b.elapsed_ms - a.elapsed_ms);
  const byStage = Object.fromEntries(MONITOR_STAGES.map((s) => [s, 0])) as Record<
    MonitorStage,
    number
  >;
  for (const turn of turns) byStage[turn.stage]++;
  return { at: new Date(now).toISOString(), running: turns.length, by_stage: byStage, turns };
}

/** An entry expired between the index read and MGET, or one an other version wrote: skipped. */
function parseEntry(text: string | null): Entry | null {
  if (text === null) return null;
  try {
    const parsed = EntrySchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

function view(entry: Entry, now: number): MonitoredTurn {
  const { started_at_ms, stage_since_ms, updated_at_ms, ...rest } = entry;
  // Worker and API clocks may differ a little: elapsed times never go negative.
  return {
    ...rest,
    started_at: new Date(started_at_ms).toISOString(),
    elapsed_ms: Math.max(0, now - started_at_ms),
    stage_elapsed_ms: Math.max(0, now - stage_since_ms),
    updated_at: new Date(updated_at_ms).toISOString(),
  };
}
