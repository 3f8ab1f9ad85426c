/**
 * Fans a session's live events out to every local reader over one Redis subscriber connection.
 *
 * Pub/sub is only the fast path: a message can be missed (reconnect) or arrive before the reader
 * has read its backlog, so readers treat it as a hint and fill any gap from the EventLog.
 * Invariant: a listener is registered before `subscribe` resolves, and the channel subscription
 * is confirmed by Redis by then, so nothing published afterwards is missed while connected.
 */
import type { Redis } from "ioredis";
import type { RedisKeys } from "../redis/keys.js";
import { type LogEvent, parseEnvelopeLine } from "./event-log.js";

export type LiveListener = (events: LogEvent[]) => void;

export class LiveHub {
  private readonly listeners = new Map<string, Set<LiveListener>>();
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(
    private readonly subscriber: Redis,
    private readonly keys: RedisKeys,
  ) {
    subscriber.on("message", (channel: string, payload: string) => {
      const set = this.listeners.get(channel);
      if (!set || set.size === 0) return;
      const events = payload.split("\n").map(parseEnvelopeLine);
      for (const listener of set) listener(events);
    });
  }

  /** Starts delivering the session's live events to `listener`; returns the unsubscribe. */
  async subscribe(sessionId: string, listener: LiveListener): Promise<() => void> {
    const channel = this.keys.sessionLive(sessionId);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      this.pending.set(channel, this.subscriber.subscribe(channel));
    }
    set.add(listener);
    await this.pending.get(channel);
    return () => this.unsubscribe(channel, listener);
  }

  get channelCount(): number {
    return this.listeners.size;
  }

  private unsubscribe(channel: string, listener: LiveListener): void {
    const set = this.listeners.get(channel);
    if (!set?.delete(listener) || set.size > 0) return;
    this.listeners.delete(channel);
    this.pending.set(
      channel,
      this.subscriber.unsubscribe(channel).catch(() => undefined),
    );
  }
}
