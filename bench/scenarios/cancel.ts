/**
 * `cancel`: how fast a cancel takes effect. Each turn streams a long answer; once its first
 * delta reaches the client, the client cancels, and the figure is POST cancel → `turn_terminal`
 * arriving on the client's own stream.
 */
import { request } from "undici";
import type { BenchFarm } from "../farm-processes.js";
import { agent, runTurn, runUsers } from "../load.js";
import { latencyFigures } from "../stats.js";

const LONG_ANSWER = "[[sim token_delay_ms=20 reply_tokens=2000]] tell me everything";

export async function cancelLatency(
  farm: BenchFarm,
  options: { turns: number; concurrency: number },
) {
  const cancelledAt = new Map<string, number>();
  const cancel = (turnId: string, at: number) => {
    cancelledAt.set(turnId, at);
    void request(`${farm.apiUrl}/v1/turns/${turnId}/cancel`, {
      method: "POST",
      dispatcher: agent,
    }).then((r) => r.body.dump());
  };
  const timings = await runUsers(options.concurrency, options.turns, (i) =>
    runTurn(
      farm.apiUrl,
      { input: LONG_ANSWER, user_id: `canceller-${i}` },
      "stream_submit",
      (turnId) => ({
        onEvent(type, at) {
          if (type === "llm_output_delta") cancel(turnId, at);
        },
      }),
    ),
  );
  const latencies = timings.map((t) => {
    const at = cancelledAt.get(t.turnId);
    if (at === undefined) throw new Error(`turn ${t.turnId} ended before it could be cancelled`);
    return t.submittedAt + t.terminalMs - at;
  });
  return {
    turns: timings.length,
    cancelled_turns: timings.filter((t) => t.status === "cancelled").length,
    ...latencyFigures("cancel_to_terminal", latencies),
  };
}
