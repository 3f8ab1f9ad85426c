/**
 * Reads back everything a turn has emitted so far (for a resumed attempt).
 *
 * The read must be complete up to the session's current head: a resumed attempt that missed
 * an event could redo a round or run a tool twice. If the log has a hole for now (the hot stream
 * was trimmed and the persister has not stored the events yet), it waits and reads again.
 */
import type { LogEvent } from "../events/event-log.js";
import type { TurnRecord } from "../store/port.js";
import { RecordedTurn } from "./recorded-turn.js";
import type { TurnServices } from "./services.js";

const PAGE = 500;
const HOLE_RETRY_MS = 200;
const HOLE_GIVE_UP_MS = 30_000;

export async function readTurnRecord(
  services: Pick<TurnServices, "eventLog">,
  turn: TurnRecord,
): Promise<RecordedTurn> {
  const { eventLog } = services;
  const head = await eventLog.headSeq(turn.sessionId);
  const events: LogEvent[] = [];
  let cursor = Math.max(0, (turn.firstSeq ?? 1) - 1);
  const deadline = Date.now() + HOLE_GIVE_UP_MS;
  while (cursor < head) {
    const page = await eventLog.read(turn.sessionId, cursor, PAGE);
    if (page.length === 0) {
      if (Date.now() > deadline) {
        throw new Error(`event log of session ${turn.sessionId} has a hole after seq ${cursor}`);
      }
      await new Promise((resolve) => setTimeout(resolve, HOLE_RETRY_MS));
      continue;
    }
    events.push(...page);
    cursor = page[page.length - 1]?.seq ?? cursor;
  }
  return RecordedTurn.fromEvents(turn.id, events);
}
