/**
 * A model without native function calling, end to end (real API, worker, simulator over HTTP,
 * Redis): the farm lists the tools in the system message, the model writes `<tool_call>` blocks,
 * the farm runs them and answers with `tool_response:` messages — and clients see the same
 * events as with a native model, without the blocks in the streamed text. The session keeps
 * typed history, so the next turn can use a native model.
 */
import { expect } from "chai";
import { DEFAULT_SYSTEM_PROMPT } from "../../src/prompt/system-prompt.js";
import { allTurnEvents, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

describe("text tool-call protocol (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({
      models: (simUrl) => ({
        "sim-text": { baseUrl: simUrl, model: "farm-sim-1", toolProtocol: "text" },
      }),
    });
  });
  after(async () => {
    await farm.stop();
  });

  it("runs a text-mode model's tool calls and streams no block text", async () => {
    const accepted = await submit(farm.url, {
      model: "sim-text",
      input: '[[sim tool=list_files args={"path":"."} calls=2 reply_tokens=40]] list the files',
    });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status, JSON.stringify(turn.error)).to.equal("completed");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    const calls = events.filter((e) => e.type === "tool_call");
    expect(calls.map((e) => e.data.tool)).to.deep.equal(["list_files", "list_files"]);
    const results = events.filter((e) => e.type === "tool_result");
    expect(results.map((e) => e.data.ok)).to.deep.equal([true, true]);
    const [first] = events.filter((e) => e.type === "llm_output");
    expect(first?.data.finish_reason).to.equal("tool_calls");
    expect(String(first?.data.content)).to.not.contain("<tool_call");
    const streamed = events
      .filter((e) => e.type === "llm_output_delta")
      .map((e) => String(e.data.delta))
      .join("");
    expect(streamed).to.not.contain("<tool_call");
    expect(streamed).to.not.contain('"name"');
    expect(turn.answer).to.contain("Result of list_files");

    // The history is typed (calls and results), whatever the protocol: a native model goes on.
    const history = await farm.api.context.store.loadHistory(accepted.session_id);
    expect(history[0]).to.deep.equal({ role: "system", content: DEFAULT_SYSTEM_PROMPT });
    expect(history.filter((m) => m.role === "tool")).to.have.length(2);
    const next = await submit(farm.url, {
      session_id: accepted.session_id,
      input: '[[sim tool=list_files args={"path":"."}]] once more, natively',
    });
    const nextTurn = await waitForTurn(farm.url, next.turn_id);
    expect(nextTurn.status).to.equal("completed");
    expect(nextTurn.answer).to.contain("Result of list_files");
    // The system prompt was written once, by the session's first turn.
    const after = await farm.api.context.store.loadHistory(accepted.session_id);
    expect(after.filter((m) => m.role === "system")).to.have.length(1);
  });
});
