/**
 * `TurnActivity` without Redis: the stage each event leads to, the tools running, time to first
 * token, live and final token speeds (provider counts replacing the estimate), retries dropping a
 * try's output, calls without streamed text, and compaction turns.
 */
import { expect } from "chai";
import { TurnActivity } from "../../src/obs/turn-activity.js";

const T0 = 1_000_000;

/** A turn at its first model call (`progress{llm_call}` at `callAt`). */
function calling(callAt: number, activity = new TurnActivity("agent", T0)): TurnActivity {
  activity.event("progress", { stage: "start", attempt: 1, model: "m" }, T0);
  activity.event("context_usage", { model_round: 1, projected_request_tokens: 900 }, callAt - 5);
  activity.event("progress", { stage: "llm_call", model_round: 1 }, callAt);
  return activity;
}

/** One short word per `everyMs`, starting at `from`. */
function stream(activity: TurnActivity, from: number, words: number, everyMs: number): number {
  for (let i = 0; i < words; i++) activity.text(" word", from + i * everyMs);
  return from + (words - 1) * everyMs;
}

describe("obs: TurnActivity", () => {
  it("starts in `starting` and waits for the model once the request is sized", () => {
    const activity = new TurnActivity("agent", T0);
    expect(activity.snapshot()).to.deep.include({
      stage: "starting",
      stage_since_ms: T0,
      round: 0,
    });
    activity.event("context_usage", { model_round: 1, projected_request_tokens: 900 }, T0 + 40);
    expect(activity.snapshot()).to.deep.include({
      stage: "waiting_for_model",
      stage_since_ms: T0 + 40,
      round: 1,
      prompt_tokens: 900,
    });
  });

  it("measures time to first token from the call's start and a live rate while streaming", () => {
    const activity = calling(T0 + 100);
    expect(activity.snapshot()).to.deep.include({ stage: "model_call", ttft_ms: null });
    const last = stream(activity, T0 + 350, 11, 50);
    const live = activity.snapshot();
    expect(live).to.deep.include({ stage: "streaming", stage_since_ms: T0 + 350, ttft_ms: 250 });
    // " word" is one token: 10 tokens after the first, over 500 ms.
    expect(live.output_tokens).to.equal(11);
    expect(live.output_tokens_per_s).to.deep.equal({ last_call: 20, turn: 20 });

    // The provider's count replaces the estimate; the window runs to the call's end.
    activity.event("llm_output", { usage: { input_tokens: 880, output_tokens: 21 } }, last + 500);
    const ended = activity.snapshot();
    expect(ended).to.deep.include({
      stage: "finishing",
      model_calls: 1,
      output_tokens: 21,
      prompt_tokens: 880,
      ttft_ms: 250,
    });
    expect(ended.output_tokens_per_s).to.deep.equal({ last_call: 20, turn: 20 });
  });

  it("gives no rate over a window too short to mean anything", () => {
    const activity = calling(T0 + 100);
    stream(activity, T0 + 200, 3, 10);
    expect(activity.snapshot().output_tokens_per_s).to.deep.equal({ last_call: null, turn: null });
  });

  it("lists the tools running and leaves tool_calls when the last one answers", () => {
    const activity = calling(T0 + 100);
    activity.event("llm_output", { tool_calls: [{}, {}], usage: null }, T0 + 300);
    activity.event("tool_call", { tool: "read_file", tool_call_id: "c1" }, T0 + 301);
    activity.event("tool_call", { tool: "execute_command", tool_call_id: "c2" }, T0 + 302);
    expect(activity.snapshot()).to.deep.include({
      stage: "tool_calls",
      stage_since_ms: T0 + 300,
      tools: ["read_file", "execute_command"],
      // No text streamed: no time to first token, no rate.
      ttft_ms: null,
      output_tokens_per_s: { last_call: null, turn: null },
    });
    activity.event("tool_result", { tool: "read_file", tool_call_id: "c1" }, T0 + 400);
    expect(activity.snapshot()).to.deep.include({
      stage: "tool_calls",
      tools: ["execute_command"],
    });
    activity.event("tool_result", { tool: "execute_command", tool_call_id: "c2" }, T0 + 900);
    expect(activity.snapshot()).to.deep.include({
      stage: "preparing",
      stage_since_ms: T0 + 900,
      tools: [],
    });
  });

  it("keeps the last call's figures across calls and sums the turn's rate over them", () => {
    const activity = calling(T0 + 100);
    const end1 = stream(activity, T0 + 200, 11, 100); // 10 tokens in 1000 ms
    activity.event("llm_output", { tool_calls: [{}], usage: { output_tokens: 11 } }, end1);
    activity.event("tool_call", { tool: "t", tool_call_id: "c1" }, end1 + 1);
    activity.event("tool_result", { tool: "t", tool_call_id: "c1" }, end1 + 2);
    activity.event("context_usage", { model_round: 2, projected_request_tokens: 950 }, end1 + 3);
    activity.event("progress", { stage: "llm_call", model_round: 2 }, end1 + 10);
    // Waiting for the new call's first token: the last call's figures stand.
    expect(activity.snapshot()).to.deep.include({ stage: "model_call", round: 2, ttft_ms: 100 });
    expect(activity.snapshot().output_tokens_per_s).to.deep.equal({ last_call: 10, turn: 10 });

    const end2 = stream(activity, end1 + 60, 31, 10); // 30 tokens in 300 ms
    activity.event("llm_output", { usage: { output_tokens: 31 } }, end2);
    const done = activity.snapshot();
    expect(done).to.deep.include({ model_calls: 2, output_tokens: 42, ttft_ms: 50 });
    // 40 tokens in 1300 ms over the turn.
    expect(done.output_tokens_per_s).to.deep.equal({ last_call: 100, turn: 30.8 });
  });

  it("drops a failed try's output and shows the back-off", () => {
    const activity = calling(T0 + 100);
    stream(activity, T0 + 200, 20, 20);
    activity.event("llm_stream_retry", { will_retry: true, reset_output: true }, T0 + 700);
    expect(activity.snapshot()).to.deep.include({
      stage: "retrying",
      output_tokens: 0,
      model_calls: 0,
      output_tokens_per_s: { last_call: null, turn: null },
    });
    activity.event("progress", { stage: "llm_call", model_round: 1 }, T0 + 1_200);
    activity.event("llm_output", { usage: { output_tokens: 5 } }, T0 + 1_300);
    expect(activity.snapshot()).to.deep.include({ model_calls: 1, output_tokens: 5 });
  });

  it("shows a park, and a compaction turn as compacting until it is done", () => {
    const parked = calling(T0 + 100);
    parked.event("progress", { stage: "waiting_for_model", retry_after_ms: 5_000 }, T0 + 200);
    expect(parked.snapshot().stage).to.equal("parked");

    const compaction = new TurnActivity("compaction", T0);
    compaction.event("progress", { stage: "start", attempt: 1 }, T0 + 5);
    expect(compaction.snapshot()).to.deep.include({ stage: "compacting", stage_since_ms: T0 + 5 });
    compaction.event("compaction", { status: "compacted" }, T0 + 800);
    expect(compaction.snapshot().stage).to.equal("finishing");
  });
});
