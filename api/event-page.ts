/**
 * JSON pages of events, built from the stored envelope strings so a page carries byte for byte
 * what the SSE stream and the store carry.
 */
import type { LogEvent } from "../src/events/event-log.js";
import type { TurnRecord } from "../src/store/port.js";
import { turnEndedBy } from "../src/turn/view.js";
import type { ApiContext } from "./context.js";

/** A turn's events are picked out of its session's log, read this many events at a time. */
const PAGE_SCAN_EVENTS = 1_000;

export function eventPageJson(events: LogEvent[], nextAfter: number, hasMore: boolean): string {
  const envelopes = events.map((e) => e.envelope).join(",");
  return `{"events":[${envelopes}],"next_after":${nextAfter},"has_more":${hasMore}}`;
}

/** A JSON page of the turn's events after `cursor`, as raw envelopes (byte-identical to SSE). */
export async function turnEventPage(
  ctx: ApiContext,
  turn: TurnRecord,
  cursor: number,
  limit: number,
): Promise<string> {
  const picked: LogEvent[] = [];
  let scanned = cursor;
  // A cursor at or past the turn's last event: nothing more will come.
  let ended = await turnEndedBy(ctx.redis, ctx.keys, turn, cursor);
  while (picked.length < limit && !ended) {
    const batch = await ctx.eventLog.read(turn.sessionId, scanned, PAGE_SCAN_EVENTS);
    for (const event of batch) {
      scanned = event.seq;
      if (event.turnId !== turn.id) continue;
      picked.push(event);
      if (event.type === "turn_terminal") ended = true;
      if (ended || picked.length >= limit) break;
    }
    if (batch.length < PAGE_SCAN_EVENTS) break;
  }
  return eventPageJson(picked, scanned, !ended);
}
