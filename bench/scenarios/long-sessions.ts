/**
 * `long-sessions`: many long sessions against the simulator with a small window (8,192 tokens)
 * and random large tool outputs; the simulator refuses any prompt over its window, as a
 * provider does. Each turn runs 3 tool rounds and an answer (4 model rounds).
 *
 * Figures: requests the simulator refused for length (target 0 — each would show as a
 * compaction with trigger `overflow_recovery`), compactions by strategy and the share done by
 * strategy 1 or 2 (target ≥ 99.9%), turns answered (target: all), compactions per session,
 * tokens saved, and the time compaction adds per turn excluding the summary call.
 */
import { pooled } from "../farm-client.js";
import type { BenchFarm } from "../farm-processes.js";
import { submitTurn } from "../load.js";
import { mean, median, percentile, round } from "../stats.js";

export const LONG_SESSIONS_WINDOW_TOKENS = 8_192;

export interface LongSessionsOptions {
  sessions: number;
  turnsPerSession: number;
  concurrency: number;
  seed: number;
}

export function longSessionsFarmEnv(): Record<string, string> {
  return {
    SIM_CONTEXT_WINDOW_TOKENS: String(LONG_SESSIONS_WINDOW_TOKENS),
    WORKER_CONCURRENCY: "32",
    SIM_TTFT_MS: "0",
    SIM_TOKEN_DELAY_MS: "0",
  };
}

interface EventRow {
  type: string;
  turn_id: string;
  data: Record<string, unknown>;
}

export async function longSessions(
  farm: BenchFarm,
  options: LongSessionsOptions,
  log: (line: string) => void,
) {
  let seed = options.seed;
  const random = () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
  const started = performance.now();
  const outcomes = await pooled(
    Array.from({ length: options.sessions }, (_, i) => i),
    options.concurrency,
    async (s) => {
      let sessionId: string | undefined;
      const turns: string[] = [];
      for (let t = 0; t < options.turnsPerSession; t++) {
        // 20–400 lines of ~40 chars: up to ≈ 4,000 tokens, half the window, per tool result.
        const lines = 20 + Math.floor(random() * 380);
        const command = `seq 1 ${lines} | sed 's/^/build step output line number /'`;
        const body = {
          input: `[[sim tool=execute_command args=${JSON.stringify({ command })} rounds=3]] session ${s} step ${t}`,
          user_id: `long-${s}`,
          ...(sessionId ? { session_id: sessionId } : {}),
        };
        const turnId = await submitTurn(farm.apiUrl, body);
        turns.push(turnId);
        const turn = await waitTerminal(farm.apiUrl, turnId);
        sessionId ??= turn.session_id;
        if (turn.status !== "completed") log(`long-sessions: turn ${turnId} ${turn.status}`);
      }
      return { sessionId: sessionId as string, turns };
    },
  );
  const elapsedS = (performance.now() - started) / 1000;

  let answered = 0;
  let turnsTotal = 0;
  const compactions: Record<string, unknown>[] = [];
  const perSession: number[] = [];
  const ownMsPerTurn: number[] = [];
  let modelRounds = 0;
  for (const { sessionId, turns } of outcomes) {
    const events = await sessionEvents(farm.apiUrl, sessionId);
    const mine = events.filter((e) => e.type === "compaction").map((e) => e.data);
    compactions.push(...mine);
    perSession.push(mine.length);
    modelRounds += events.filter((e) => e.type === "llm_output").length;
    for (const turnId of turns) {
      turnsTotal++;
      const terminal = events.find((e) => e.turn_id === turnId && e.type === "turn_terminal");
      if (terminal?.data.status === "completed") answered++;
      const own = events
        .filter((e) => e.turn_id === turnId && e.type === "compaction")
        .reduce((ms, e) => ms + Number(e.data.duration_ms) - Number(e.data.summary_ms ?? 0), 0);
      ownMsPerTurn.push(own);
    }
  }
  const byStrategy: Record<string, number> = {};
  for (const c of compactions)
    byStrategy[String(c.strategy)] = (byStrategy[String(c.strategy)] ?? 0) + 1;
  const overflowRecoveries = compactions.filter((c) => c.trigger === "overflow_recovery").length;
  const good = (byStrategy.summary ?? 0) + (byStrategy.trim ?? 0);
  const saved = compactions.map((c) => Number(c.tokens_before) - Number(c.tokens_after));
  const figures = {
    sessions: options.sessions,
    turns: turnsTotal,
    model_rounds: modelRounds,
    turns_answered: answered,
    over_window_requests: overflowRecoveries,
    compactions: compactions.length,
    compactions_by_strategy: byStrategy,
    compaction_success_pct:
      compactions.length === 0 ? 100 : round((100 * good) / compactions.length, 3),
    compactions_per_session_median: median(perSession),
    tokens_saved_per_compaction_median: median(saved),
    tokens_saved_total: saved.reduce((a, b) => a + b, 0),
    compaction_own_ms_per_turn_mean: round(mean(ownMsPerTurn), 3),
    compaction_own_ms_per_compacting_turn_p50: round(
      median(ownMsPerTurn.filter((ms) => ms > 0)),
      2,
    ),
    compaction_own_ms_per_compacting_turn_p95: round(
      percentile(
        ownMsPerTurn.filter((ms) => ms > 0),
        95,
      ),
      2,
    ),
    window_tokens: LONG_SESSIONS_WINDOW_TOKENS,
    elapsed_s: round(elapsedS, 1),
    targets: { over_window_requests: 0, compaction_success_pct: 99.9, turns_answered: turnsTotal },
  };
  log(`long-sessions: ${JSON.stringify(figures)}`);
  return { ...figures, settings: options };
}

async function waitTerminal(
  apiUrl: string,
  turnId: string,
): Promise<{ status: string; session_id: string }> {
  for (;;) {
    const res = await fetch(`${apiUrl}/v1/turns/${turnId}`);
    const turn = (await res.json()) as { status: string; session_id: string };
    if (["completed", "failed", "cancelled"].includes(turn.status)) return turn;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function sessionEvents(apiUrl: string, sessionId: string): Promise<EventRow[]> {
  const rows: EventRow[] = [];
  let after = 0;
  for (;;) {
    const res = await fetch(`${apiUrl}/v1/sessions/${sessionId}/events?after=${after}&limit=1000`);
    const page = (await res.json()) as {
      events: EventRow[];
      has_more: boolean;
      next_after: number;
    };
    rows.push(...page.events);
    if (!page.has_more) return rows;
    after = page.next_after;
  }
}
