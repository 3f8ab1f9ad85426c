/**
 * Shared set-up for the events-layer tests: the real Redis under a key prefix private to one
 * spec file, a real SqliteStore in a temp folder, and small builders for events.
 *
 * Each spec file opens one fixture in `before` and closes it in `after`; `close` deletes every
 * key under the prefix and the temp folder. Tests keep apart by using fresh session/turn ids, or
 * (where a test owns the shared persist stream) fresh keys from `fixture.freshKeys()`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import { ConfigSchema, type FarmConfig } from "../../src/config/schema.js";
import type { EventTarget, PendingEvent } from "../../src/events/appender.js";
import { EventAppender } from "../../src/events/appender.js";
import type { EventType } from "../../src/events/envelope.js";
import { type RedisKeys, redisKeys } from "../../src/redis/keys.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { deleteKeys, REDIS_URL } from "../helpers/redis.js";

export { REDIS_URL };

export type EventSettings = FarmConfig["events"];

/** The `events` config section as the farm would run it, with optional overrides. */
export function eventSettings(overrides: Partial<EventSettings> = {}): EventSettings {
  return { ...ConfigSchema.parse({}).events, ...overrides };
}

const STORE_FILE = "farm.sqlite";

export class EventsFixture {
  private counter = 0;
  private readonly extraConnections: Redis[] = [];

  private constructor(
    readonly prefix: string,
    readonly keys: RedisKeys,
    readonly redis: Redis,
    readonly store: SqliteStore,
    private readonly dir: string,
  ) {}

  /** The store's SQLite file (to hold its write lock from another connection: a store outage). */
  get storeFile(): string {
    return path.join(this.dir, STORE_FILE);
  }

  static async open(name: string): Promise<EventsFixture> {
    const prefix = `test-events-${name}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    const dir = await mkdtemp(path.join(tmpdir(), "farm-events-"));
    const store = SqliteStore.open(path.join(dir, STORE_FILE));
    return new EventsFixture(prefix, redisKeys(prefix), new Redis(REDIS_URL), store, dir);
  }

  /** A name unique within this fixture (session and turn ids). */
  id(kind: string): string {
    this.counter += 1;
    return `${kind}-${this.counter}`;
  }

  /** Keys under a fresh sub-prefix: a persist stream no other test touches. */
  freshKeys(): RedisKeys {
    return redisKeys(`${this.prefix}:${this.id("k")}`);
  }

  /** A new Redis connection, closed with the fixture. */
  connection(): Redis {
    const conn = new Redis(REDIS_URL);
    this.extraConnections.push(conn);
    return conn;
  }

  appender(settings: EventSettings = eventSettings(), keys: RedisKeys = this.keys): EventAppender {
    return new EventAppender(this.redis, keys, this.store, settings);
  }

  /** The session's hot stream as [id, envelope] pairs. */
  async hot(sessionId: string, keys: RedisKeys = this.keys): Promise<[string, string][]> {
    const entries = await this.redis.xrange(keys.sessionEvents(sessionId), "-", "+");
    return entries.map(([id, fields]) => {
      expect(fields[0], `field name of hot entry ${id}`).to.equal("e");
      return [id, fields[1] as string];
    });
  }

  /** The persist stream's payloads, oldest first. */
  async persistPayloads(keys: RedisKeys = this.keys): Promise<string[]> {
    const entries = await this.redis.xrange(keys.persistStream, "-", "+");
    return entries.map(([, fields]) => fields[1] as string);
  }

  async close(): Promise<void> {
    for (const conn of this.extraConnections) conn.disconnect();
    await deleteKeys(this.redis, `${this.prefix}:*`);
    await this.redis.quit();
    await this.store.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The target of turn `turn` of a session. Step hashes are keyed by turn id alone, so the turn id
 * carries the session id to keep tests that reuse turn names apart.
 */
export function target(sessionId: string, turn: string, userId = "user-1"): EventTarget {
  return { sessionId, turnId: `${sessionId}.${turn}`, userId };
}

export function event(
  type: EventType,
  step: string,
  data: Record<string, unknown> = {},
  ts = 1_700_000_000_000,
): PendingEvent {
  return { type, step, ts, data };
}

/** `count` progress events with steps `<prefix>.<i>` and data `{ i }`. */
export function progressEvents(prefix: string, count: number, from = 0): PendingEvent[] {
  return Array.from({ length: count }, (_, k) =>
    event("progress", `${prefix}.${from + k}`, { i: from + k }),
  );
}

/** A stored event row built from an envelope line, as the persister builds it. */
export { storedEventOf as storedFromEnvelope } from "../../src/events/event-log.js";

/** A well-formed v1 envelope written by hand (for events that never went through the script). */
export function handEnvelope(
  sessionId: string,
  seq: number,
  turnId: string,
  type: EventType = "progress",
  data: Record<string, unknown> = {},
): string {
  return JSON.stringify({
    v: 1,
    seq,
    session_id: sessionId,
    turn_id: turnId,
    user_id: "user-1",
    type,
    ts: 1_700_000_000_000 + seq,
    data,
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` holds; the mocha timeout bounds the wait. */
export async function waitFor(check: () => boolean | Promise<boolean>, pollMs = 20): Promise<void> {
  while (!(await check())) await sleep(pollMs);
}
