/**
 * `session-load`: loading a long session's context at turn start, with a snapshot vs from the
 * whole history (what every turn did before snapshots), in the same run.
 *
 * Two sessions of T finished turns, 4 history items each (user, assistant with a tool call, tool
 * output, answer; realistic sizes). Each has a snapshot covering all but the last 2 turns:
 * - interval: the context as it is (every item), as the worker saves every
 *   `store.snapshotEveryEvents` — loading it must give exactly the full history (checked);
 * - compaction: a summary plus the 8 most recent items, the shape a compaction snapshot has.
 * Timed: `loadContext` (snapshot + the items after it) of each, and `loadHistory` (every item),
 * alternating, medians. Per adapter (SQLite; MongoDB with MONGO_URL).
 */
import type { ContextMessage } from "../../src/context/message.js";
import type { SnapshotReason, Store } from "../../src/store/port.js";
import { median, round } from "../stats.js";
import { benchStores, runId } from "../store-fixtures.js";

export interface SessionLoadOptions {
  turns: number;
  repeats: number;
}

const TAIL_TURNS = 2;
const COMPACTION_KEEPS_ITEMS = 8;
const SUMMARY: ContextMessage = {
  role: "user",
  content: `[Context Summary] ${"Goal, progress, decisions, files and next steps. ".repeat(40)}`,
};

function turnItems(i: number): ContextMessage[] {
  const callId = `call-${i}`;
  return [
    {
      role: "user",
      content: `Step ${i}: look at the build output and fix the failing test. `.repeat(3),
    },
    {
      role: "assistant",
      content: "",
      tool_calls: [{ id: callId, name: "execute_command", arguments: '{"command":"npm test"}' }],
    },
    { role: "tool", tool_call_id: callId, content: `ok ${i}\n`.repeat(60) },
    {
      role: "assistant",
      content: `Fixed step ${i}: the assertion compared strings to numbers. `.repeat(4),
    },
  ];
}

export async function sessionLoad(options: SessionLoadOptions, log: (line: string) => void) {
  const results: Record<string, unknown> = {};
  for (const bench of await benchStores()) {
    const store = await bench.open();
    try {
      const interval = `load-${runId()}`;
      const compaction = `load-${runId()}`;
      await build(store, interval, options.turns, "interval", (messages) => messages);
      await build(store, compaction, options.turns, "compaction", (messages) => [
        SUMMARY,
        ...messages.slice(-COMPACTION_KEEPS_ITEMS),
      ]);
      const times = { interval: [] as number[], compaction: [] as number[], full: [] as number[] };
      for (let r = 0; r < options.repeats; r++) {
        let t = performance.now();
        const context = await store.loadContext(interval);
        times.interval.push(performance.now() - t);
        t = performance.now();
        const compacted = await store.loadContext(compaction);
        times.compaction.push(performance.now() - t);
        t = performance.now();
        const history = await store.loadHistory(interval);
        times.full.push(performance.now() - t);
        if (context.messages.length !== history.length || context.snapshot === null) {
          throw new Error("session-load: snapshot + tail differs from the full history");
        }
        if (compacted.messages.length !== 1 + COMPACTION_KEEPS_ITEMS + TAIL_TURNS * 4) {
          throw new Error("session-load: the compaction snapshot was not used");
        }
      }
      const full = median(times.full);
      const at = (list: number[]) => ({
        ms: round(median(list), 2),
        speedup_vs_full_history: round(full / median(list), 2),
      });
      results[bench.adapter] = {
        full_history_ms: round(full, 2),
        interval_snapshot: at(times.interval),
        compaction_snapshot: at(times.compaction),
        history_items: options.turns * 4,
      };
      log(`session-load ${bench.adapter}: ${JSON.stringify(results[bench.adapter])}`);
    } finally {
      await store.close();
      await bench.dispose();
    }
  }
  if (!process.env.MONGO_URL) results.mongodb = "skipped: MONGO_URL is not set";
  return { ...results, settings: options };
}

/** The session's turns, with a snapshot of `snapshotOf(history so far)` before the last 2. */
async function build(
  store: Store,
  session: string,
  turns: number,
  reason: SnapshotReason,
  snapshotOf: (messages: ContextMessage[]) => ContextMessage[],
): Promise<void> {
  const messages: ContextMessage[] = [];
  for (let i = 0; i < turns; i++) {
    const id = `${session}-t${i}`;
    await store.createTurn(
      {
        id,
        sessionId: session,
        userId: "bench-user",
        input: `step ${i}`,
        model: "sim",
        tools: [],
        metadata: null,
        createdAt: Date.now(),
      },
      null,
    );
    const items = turnItems(i);
    await store.finishTurn(
      id,
      {
        status: "completed",
        finishedAt: Date.now(),
        answer: "done",
        stopReason: "stop",
        usage: null,
        error: null,
      },
      items,
    );
    messages.push(...items);
    if (i === turns - TAIL_TURNS - 1) {
      const saved = await store.saveSnapshot({
        sessionId: session,
        historyLength: messages.length,
        seq: messages.length * 10,
        reason,
        messages: snapshotOf(messages),
        createdAt: Date.now(),
      });
      if (!saved) throw new Error("session-load: the snapshot was refused");
    }
  }
}
