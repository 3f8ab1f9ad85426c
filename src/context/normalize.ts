/**
 * The history invariants every model request relies on (Codex `normalize_history`, wunder's
 * ContextManager), as pure functions on `ContextMessage[]`, plus the pair-aware removals and the
 * exchange split that compaction builds on.
 *
 * After `normalizeHistory`:
 * - every tool call of every assistant message has exactly one result, and the results of an
 *   assistant message sit right after it (the chat-completions wire format refuses anything
 *   else): first its results that were already there, in their order, then results that sat
 *   further down (moved up), then a synthetic "aborted" result for each call still unanswered,
 *   in call order;
 * - a result is matched to the earliest still-unanswered call with its id *before* it; a second
 *   result for an answered call is a duplicate and is dropped (the first one wins);
 * - a result with no call before it (an orphan, including a result placed before its call) is
 *   dropped;
 * - nothing else changes: no message is copied or edited (token counts cached per message object
 *   stay valid), non-tool messages keep their order.
 *
 * Exchanges: an exchange starts at a user-role message — what the user wrote, or a compaction
 * summary (`summary: true`), which stands for the exchanges it replaced — and runs until the next
 * one. Messages before the first user message (a system prompt, or what a trim left behind) form
 * a leading group of their own. On a normalized history an exchange never splits a call from its
 * results.
 */
import type { ContextMessage } from "./message.js";

/** The content of the result inserted for a call that never got one. */
export const MISSING_RESULT_CONTENT = JSON.stringify({
  ok: false,
  data: null,
  error: "missing tool result (aborted)",
});

export interface NormalizeReport {
  /** Call ids that got a synthetic result. */
  inserted: string[];
  /** Call ids of dropped results (orphans and duplicates). */
  dropped: string[];
  /** Call ids of results moved up next to their call. */
  moved: string[];
}

export interface Normalized {
  items: ContextMessage[];
  report: NormalizeReport;
}

type ToolMessage = Extract<ContextMessage, { role: "tool" }>;

interface CallSlot {
  id: string;
  result: ToolMessage | null;
}

/** A non-tool message and, for an assistant message with calls, its results. */
interface Group {
  head: ContextMessage;
  slots: CallSlot[];
  /** Results in the order they were matched. */
  results: ToolMessage[];
}

const callsOf = (m: ContextMessage) => (m.role === "assistant" ? (m.tool_calls ?? []) : []);

export function normalizeHistory(items: readonly ContextMessage[]): Normalized {
  const report: NormalizeReport = { inserted: [], dropped: [], moved: [] };
  const groups: Group[] = [];
  /** Unanswered calls by id, oldest first. */
  const pending = new Map<string, CallSlot[]>();
  const declared = new Set<string>();
  const slotGroup = new Map<CallSlot, Group>();
  let current: Group | null = null;

  for (const m of items) {
    if (m.role !== "tool") {
      current = { head: m, slots: [], results: [] };
      groups.push(current);
      for (const call of callsOf(m)) {
        const slot: CallSlot = { id: call.id, result: null };
        current.slots.push(slot);
        slotGroup.set(slot, current);
        declared.add(call.id);
        const queue = pending.get(call.id);
        if (queue) queue.push(slot);
        else pending.set(call.id, [slot]);
      }
      continue;
    }
    const slot = pending.get(m.tool_call_id)?.shift();
    if (!slot) {
      report.dropped.push(m.tool_call_id);
      continue;
    }
    slot.result = m;
    const group = slotGroup.get(slot) as Group;
    group.results.push(m);
    if (group !== current) report.moved.push(m.tool_call_id);
  }

  const out: ContextMessage[] = [];
  for (const group of groups) {
    out.push(group.head);
    for (const result of group.results) out.push(result);
    for (const slot of group.slots) {
      if (slot.result) continue;
      out.push(syntheticResult(slot.id));
      report.inserted.push(slot.id);
    }
  }
  return { items: out, report };
}

export function syntheticResult(callId: string): ToolMessage {
  return { role: "tool", tool_call_id: callId, content: MISSING_RESULT_CONTENT };
}

/** True when `normalizeHistory` would change nothing. */
export function isNormalized(items: readonly ContextMessage[]): boolean {
  const { report } = normalizeHistory(items);
  return report.inserted.length + report.dropped.length + report.moved.length === 0;
}

/** Whether `m` starts an exchange: any user-role message, a compaction summary included. */
export function isExchangeStart(m: ContextMessage): boolean {
  return m.role === "user";
}

export function isSummary(m: ContextMessage): boolean {
  return m.role === "user" && m.summary === true;
}

/**
 * The history cut into exchanges (see the header). Concatenated, they give back `items`; the
 * first group has no user message when `items` does not start with one.
 */
export function splitExchanges(items: readonly ContextMessage[]): ContextMessage[][] {
  const exchanges: ContextMessage[][] = [];
  let current: ContextMessage[] | null = null;
  for (const m of items) {
    if (current === null || isExchangeStart(m)) {
      current = [];
      exchanges.push(current);
    }
    current.push(m);
  }
  return exchanges;
}

export interface Removal {
  items: ContextMessage[];
  /** What was removed, in history order; empty when there was nothing to remove. */
  removed: ContextMessage[];
}

/**
 * For each index of `items`, the index of the assistant message whose call a tool result
 * answers, matched as `normalizeHistory` matches (earliest unanswered call with the id before
 * it); -1 for orphans, duplicates and non-tool messages.
 */
function resultOwners(items: readonly ContextMessage[]): number[] {
  const owners: number[] = new Array(items.length).fill(-1);
  const pending = new Map<string, number[]>();
  items.forEach((m, i) => {
    if (m.role === "tool") {
      const owner = pending.get(m.tool_call_id)?.shift();
      if (owner !== undefined) owners[i] = owner;
      return;
    }
    for (const call of callsOf(m)) {
      const queue = pending.get(call.id);
      if (queue) queue.push(i);
      else pending.set(call.id, [i]);
    }
  });
  return owners;
}

/**
 * Removes the message at `index` together with its counterparts, so no pair is left dangling
 * (Codex `remove_first_item`/`remove_last_item`):
 * - an assistant message with calls takes its results with it (wherever they sit);
 * - a tool result takes the assistant message whose call it answers, and so every other result
 *   of that message; an orphan or duplicate result goes alone;
 * - anything else goes alone.
 */
export function removeItemAt(items: readonly ContextMessage[], index: number): Removal {
  if (items[index] === undefined) return { items: [...items], removed: [] };
  const owners = resultOwners(items);
  const gone = new Set([index]);
  const owner = owners[index] ?? -1;
  if (owner >= 0) gone.add(owner);
  return removeWithResults(items, gone, owners);
}

export const removeFirstItem = (items: readonly ContextMessage[]): Removal =>
  removeItemAt(items, 0);

export const removeLastItem = (items: readonly ContextMessage[]): Removal =>
  removeItemAt(items, items.length - 1);

/**
 * Removes the oldest exchange that holds anything but system messages — the leading group
 * without a user message counts as one — together with the results of its calls wherever they
 * sit, so a not yet normalized history is not left with orphans either. System messages are
 * instructions, not history: they always stay. A caller trimming in a loop stops when `removed`
 * is empty.
 */
export function removeOldestExchange(items: readonly ContextMessage[]): Removal {
  let start = 0;
  for (const exchange of splitExchanges(items)) {
    const gone = new Set<number>();
    exchange.forEach((m, k) => {
      if (m.role !== "system") gone.add(start + k);
    });
    start += exchange.length;
    if (gone.size > 0) return removeWithResults(items, gone, resultOwners(items));
  }
  return { items: [...items], removed: [] };
}

/** Drops the indices in `gone` and every result whose call message is among them. */
function removeWithResults(
  items: readonly ContextMessage[],
  gone: Set<number>,
  owners: readonly number[],
): Removal {
  const kept: ContextMessage[] = [];
  const removed: ContextMessage[] = [];
  items.forEach((m, i) => {
    const owner = owners[i] ?? -1;
    (gone.has(i) || (owner >= 0 && gone.has(owner)) ? removed : kept).push(m);
  });
  return { items: kept, removed };
}
