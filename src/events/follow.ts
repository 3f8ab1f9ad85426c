/**
 * Follows one turn's events from a cursor: its backlog first, then live, until its
 * `turn_terminal` (or until the reader goes away). Yields batches: everything that is ready at
 * once goes to the client in one write.
 *
 * Invariants:
 * - every event of the turn after the cursor is yielded exactly once and in seq order: the
 *   cursor only moves to `cursor + 1`, whether the event came from a live message or a read;
 * - a live message that does not continue the cursor (a gap: missed message, reconnect) is not
 *   trusted; the gap is read from the EventLog instead;
 * - the log is read only when there may be something to read (start, a gap, a full page, an
 *   idle poll), never after each live message;
 * - while idle, the log is polled every `idlePollMs`, so a lost live message delays a reader by
 *   at most that long.
 */
import type { EventLog, LogEvent } from "./event-log.js";
import type { LiveHub } from "./live-hub.js";

const READ_PAGE = 500;
const MAX_INBOX_EVENTS = 5_000;

export interface FollowOptions {
  sessionId: string;
  turnId: string;
  /** Yield events with seq > after. */
  after: number;
  signal: AbortSignal;
  idlePollMs: number;
  /** Checked when idle: true when the turn ended at or before `cursor` (nothing more will come). */
  endedBy(cursor: number): Promise<boolean>;
}

export async function* followTurn(
  log: EventLog,
  hub: LiveHub,
  options: FollowOptions,
): AsyncGenerator<LogEvent[]> {
  const inbox: LogEvent[] = [];
  let wake: (() => void) | null = null;
  let mustRead = true;
  const unsubscribe = hub.subscribe(options.sessionId, (events) => {
    // A slow client must not make the inbox grow without bound: past the cap, drop it and
    // read from the log instead, which holds the same events.
    if (inbox.length + events.length > MAX_INBOX_EVENTS) {
      inbox.length = 0;
      mustRead = true;
    } else {
      inbox.push(...events);
    }
    wake?.();
  });
  const onAbort = () => wake?.();
  options.signal.addEventListener("abort", onAbort);
  let cursor = options.after;
  try {
    while (!options.signal.aborted) {
      let batch = takeContinuation(inbox, cursor);
      if (batch.length === 0 && (mustRead || inbox.length > 0)) {
        batch = await log.read(options.sessionId, cursor, READ_PAGE);
        mustRead = batch.length === READ_PAGE;
        // Live events may have arrived during the read.
        if (batch.length === 0) batch = takeContinuation(inbox, cursor);
      }
      if (batch.length > 0) {
        const mine: LogEvent[] = [];
        let ended = false;
        for (const event of batch) {
          cursor = event.seq;
          if (event.turnId !== options.turnId) continue;
          mine.push(event);
          if (event.type === "turn_terminal") {
            ended = true;
            break;
          }
        }
        if (mine.length > 0) yield mine;
        if (ended) return;
        continue;
      }
      // Nothing continues the cursor: what is left in the inbox lies beyond a gap; wait, then read.
      inbox.length = 0;
      const woken = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), options.idlePollMs);
        wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      wake = null;
      if (!woken) {
        if (await options.endedBy(cursor)) return;
        mustRead = true;
      }
    }
  } finally {
    options.signal.removeEventListener("abort", onAbort);
    unsubscribe();
  }
}

/** Drops inbox events at or before the cursor and takes the run that continues it. */
function takeContinuation(inbox: LogEvent[], cursor: number): LogEvent[] {
  let expected = cursor + 1;
  let stale = 0;
  while (stale < inbox.length && (inbox[stale] as LogEvent).seq < expected) stale++;
  inbox.splice(0, stale);
  let run = 0;
  while (run < inbox.length && (inbox[run] as LogEvent).seq === expected) {
    run++;
    expected++;
  }
  return inbox.splice(0, run);
}
