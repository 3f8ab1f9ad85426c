/**
 * Fans live events out to every local reader over one Redis subscriber connection, subscribed
 * once to the pattern of all session channels: a new reader costs no Redis round trip.
 *
 * Pub/sub is only the fast path: a message can be missed (reconnect) or arrive before the reader
 * has read its backlog, so readers treat it as a hint and fill any gap from the EventLog.
 * Messages for sessions nobody here reads are dropped before they are parsed.
 */
import type { Redis } from "ioredis";
import { untilReady } from "../redis/connection.js";
import type { RedisKeys } from "../redis/keys.js";
import { type LogEvent, parseEnvelopeLine } from "./event-log.js";

export type LiveListener = (events: LogEvent[]) => void;

export class LiveHub {
  private readonly listeners = new Map<string, Set<LiveListener>>();

  private constructor(
    subscriber: Redis,
    private readonly keys: RedisKeys,
  ) {
    subscriber.on("pmessage", (_pattern: string, channel: string, payload: string) => {
      const set = this.listeners.get(channel);
      if (!set || set.size === 0) return;
      const events = payload.split("\n").map(parseEnvelopeLine);
      for (const listener of set) listener(events);
    });
  }

  /** Subscribes to every session's live channel; resolves once Redis confirmed it. */
  static async start(subscriber: Redis, keys: RedisKeys): Promise<LiveHub> {
    const hub = new LiveHub(subscriber, keys);
    await untilReady(subscriber);
    await subscriber.psubscribe(keys.sessionLive("*"));
    return hub;
  }

  /** Starts delivering the session's live events to `listener`; returns the unsubscribe. */
  subscribe(sessionId: string, listener: LiveListener): () => void {
    const channel = this.keys.sessionLive(sessionId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(channel) === set) this.listeners.delete(channel);
    };
  }

  get readerCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}
