/**
 * Compaction end to end with a small window (real API, worker, simulator over HTTP, Redis):
 * a long session is compacted before it would overflow and goes on; the compacted context is
 * saved as a snapshot that the next turn loads; a first message larger than the whole window
 * is cut to fit with a visible `compaction` event instead of being refused by the provider.
 */
import { expect } from "chai";
import { allTurnEvents, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const WINDOW_TOKENS = 8_192;

describe("context compaction (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ env: { SIM_CONTEXT_WINDOW_TOKENS: String(WINDOW_TOKENS) } });
  });
  after(async () => {
    await farm.stop();
  });

  /** A turn whose command prints `lines` lines of about 60 chars (≈ 15 tokens each). */
  const bigOutputTurn = (sessionId: string | undefined, lines: number, i: number) =>
    submit(farm.url, {
      input: `[[sim tool=execute_command args={"command":"seq 1 ${lines} | sed 's/^/line ${i} of a long build log with some words: /'"}]] step ${i}`,
      ...(sessionId ? { session_id: sessionId } : {}),
    });

  it("compacts a long session before it overflows, and every turn is answered", async () => {
    let sessionId: string | undefined;
    const compactions: Record<string, unknown>[] = [];
    for (let i = 0; i < 8; i++) {
      const accepted = await bigOutputTurn(sessionId, 60, i);
      sessionId = accepted.session_id;
      const turn = await waitForTurn(farm.url, accepted.turn_id);
      expect(turn.status, `turn ${i}: ${JSON.stringify(turn.error)}`).to.equal("completed");
      const events = await allTurnEvents(farm.url, accepted.turn_id);
      expect(events.some((e) => e.type === "llm_stream_retry")).to.equal(false);
      for (const e of events) if (e.type === "compaction") compactions.push(e.data);
      for (const e of events.filter((x) => x.type === "context_usage")) {
        expect(Number(e.data.context_tokens)).to.be.below(WINDOW_TOKENS);
      }
    }
    expect(compactions.length).to.be.at.least(1);
    const first = compactions[0] as Record<string, number | string>;
    expect(first).to.include({ reason: "history", trigger: "threshold", status: "done" });
    expect(["summary", "trim"]).to.include(first.strategy);
    expect(Number(first.tokens_after)).to.be.below(Number(first.tokens_before));
    expect(Number(first.tokens_after)).to.be.at.most(Number(first.limit_tokens));

    const snapshot = await farm.api.context.store.latestSnapshot(sessionId as string);
    expect(snapshot?.reason).to.equal("compaction");
    const history = await farm.api.context.store.loadHistory(sessionId as string);
    expect(snapshot?.messages.length).to.be.below(history.length);
  });

  it("cuts a first message larger than the whole window, with a compaction event", async () => {
    const words = Array.from({ length: 12_000 }, (_, i) => `word${i % 500}`).join(" ");
    const accepted = await submit(farm.url, { input: `please summarise: ${words}` });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("completed");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    const compaction = events.find((e) => e.type === "compaction");
    expect(compaction?.data).to.include({ reason: "oversized_input", strategy: "minimal" });
    expect(Number(compaction?.data.tokens_after)).to.be.at.most(
      Number(compaction?.data.limit_tokens),
    );
  });
});
