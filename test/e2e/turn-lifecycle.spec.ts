/**
 * The life of a turn over real HTTP: submit, poll, stream, session history, round limit.
 */
import { expect } from "chai";
import { allTurnEvents, http, readStream, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

describe("turn lifecycle (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ env: { MAX_ROUNDS: "3" } });
  });
  after(async () => {
    await farm.stop();
  });

  it("runs a submitted turn to completion with a tool call, an answer and usage", async () => {
    const accepted = await submit(farm.url, { input: "please list the files", user_id: "alice" });
    expect(accepted.status).to.equal("queued");
    expect(accepted.turn_id).to.match(/^turn_/);

    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("completed");
    expect(turn.stop_reason).to.equal("model_response");
    expect(turn.answer).to.match(/^Result of list_files:/);
    expect(turn.usage?.input_tokens).to.be.greaterThan(0);
    expect(turn.usage?.output_tokens).to.be.greaterThan(0);
    expect(turn.usage?.total_tokens).to.equal(
      (turn.usage?.input_tokens ?? 0) + (turn.usage?.output_tokens ?? 0),
    );
    expect(turn.attempt).to.equal(1);
  });

  it("streams every event of the turn in order, ending with turn_terminal", async () => {
    const accepted = await submit(farm.url, { input: "please list the files" });
    const read = await readStream(farm.url, accepted.turn_id);
    expect(read.ended).to.equal(true);
    const types = read.frames.map((f) => f.event);
    expect(types[0]).to.equal("queued");
    expect(types.at(-1)).to.equal("turn_terminal");
    expect(types).to.include.members([
      "progress",
      "context_usage",
      "llm_output",
      "token_usage",
      "tool_call",
      "tool_result",
      "round_usage",
      "final",
    ]);
    // A new session: seqs run 1, 2, 3, … without a gap, and ids equal the envelope seq.
    read.frames.forEach((frame, i) => {
      expect(frame.id).to.equal(i + 1);
      expect(frame.data.seq).to.equal(frame.id);
      expect(frame.data.type).to.equal(frame.event);
      expect(frame.data.turn_id).to.equal(accepted.turn_id);
      expect(frame.data.v).to.equal(1);
    });
    expect(read.frames.at(-1)?.data.data).to.include({ status: "completed" });
    const toolCall = read.frames.find((f) => f.event === "tool_call");
    const toolResult = read.frames.find((f) => f.event === "tool_result");
    expect(toolCall?.data.data.tool_call_id).to.equal(toolResult?.data.data.tool_call_id);
    expect(toolResult?.data.data.ok).to.equal(true);

    // The JSON pages serve the same events, byte for byte the same envelopes.
    const paged = await allTurnEvents(farm.url, accepted.turn_id);
    expect(paged).to.deep.equal(read.frames.map((f) => f.data));
  });

  it("streams the turn from the submit request itself when asked for text/event-stream", async () => {
    const res = await fetch(`${farm.url}/v1/turns`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ input: "please list the files", user_id: "streamer" }),
    });
    expect(res.status).to.equal(200);
    expect(res.headers.get("content-type")).to.match(/^text\/event-stream/);
    const turnId = res.headers.get("x-turn-id") as string;
    expect(res.headers.get("location")).to.equal(`/v1/turns/${turnId}`);
    const text = await res.text();
    const ids = [...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1]));
    const types = [...text.matchAll(/^event: (\w+)$/gm)].map((m) => m[1]);
    expect(types[0]).to.equal("queued");
    expect(types.at(-1)).to.equal("turn_terminal");
    expect(ids).to.deep.equal(Array.from({ length: ids.length }, (_, i) => i + 1));
    // The same events as the stream of the turn read afterwards.
    const again = await readStream(farm.url, turnId);
    expect(again.frames.map((f) => f.id)).to.deep.equal(ids);
  });

  it("replays a streaming submit with the same Idempotency-Key as the same turn's stream", async () => {
    const send = () =>
      fetch(`${farm.url}/v1/turns`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "text/event-stream",
          "idempotency-key": "stream-replay-1",
        },
        body: JSON.stringify({ input: "hello", user_id: "streamer-2" }),
      });
    const first = await send();
    const firstText = await first.text();
    const second = await send();
    expect(second.status).to.equal(200);
    expect(second.headers.get("idempotent-replayed")).to.equal("true");
    expect(second.headers.get("x-turn-id")).to.equal(first.headers.get("x-turn-id"));
    expect(await second.text()).to.equal(firstText);
  });

  it("keeps the session's history: a second turn sees the first one's messages", async () => {
    const first = await submit(farm.url, { input: "please list the files", user_id: "bob" });
    const firstTurn = await waitForTurn(farm.url, first.turn_id);
    const second = await submit(farm.url, {
      input: "hello again",
      session_id: first.session_id,
      user_id: "bob",
    });
    const turn = await waitForTurn(farm.url, second.turn_id);
    expect(turn.status).to.equal("completed");
    const events = await allTurnEvents(farm.url, second.turn_id);
    const usage = events.find((e) => e.type === "context_usage");
    // system prompt + user + assistant(tool call) + tool result + assistant answer, then the
    // new input
    expect(usage?.data.message_count).to.equal(6);
    // The session log continues where the first turn ended.
    expect(events[0]?.seq).to.equal(firstTurn.last_seq + 1);

    const session = await http<{ turns: { turn_id: string }[]; last_seq: number; user_id: string }>(
      farm.url,
      "GET",
      `/v1/sessions/${first.session_id}`,
    );
    expect(session.status).to.equal(200);
    expect(session.body.user_id).to.equal("bob");
    expect(session.body.turns.map((t) => t.turn_id)).to.deep.equal([second.turn_id, first.turn_id]);
    expect(session.body.last_seq).to.equal(events.at(-1)?.seq);
  });

  it("pages a session's whole event log across turns", async () => {
    const first = await submit(farm.url, { input: "hi" });
    await waitForTurn(farm.url, first.turn_id);
    const second = await submit(farm.url, { input: "and again", session_id: first.session_id });
    await waitForTurn(farm.url, second.turn_id);
    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const page = await http<{
        events: { seq: number; turn_id: string }[];
        next_after: number;
        has_more: boolean;
      }>(farm.url, "GET", `/v1/sessions/${first.session_id}/events?after=${after}&limit=5`);
      seen.push(...page.body.events.map((e) => e.seq));
      after = page.body.next_after;
      if (!page.body.has_more) break;
    }
    expect(seen).to.deep.equal(Array.from({ length: seen.length }, (_, i) => i + 1));
    expect(seen.length).to.be.greaterThan(10);
  });

  it("stops at the round limit with stop_reason max_rounds", async () => {
    const accepted = await submit(farm.url, { input: "[[sim rounds=10]] keep listing" });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("completed");
    expect(turn.stop_reason).to.equal("max_rounds");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    expect(events.filter((e) => e.type === "llm_output")).to.have.length(3);
  });

  it("answers 204 to a resume after the turn's last event, so EventSource stops reconnecting", async () => {
    const accepted = await submit(farm.url, { input: "hi" });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    const read = await readStream(farm.url, accepted.turn_id, { lastEventId: turn.last_seq });
    expect(read.status).to.equal(204);
  });
});
