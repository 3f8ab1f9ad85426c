/**
 * Cancelling turns over HTTP: running (model streaming, tool running), queued behind a busy
 * session, waiting with no worker at all; and a client disconnect that must not cancel anything.
 */
import { expect } from "chai";
import {
  allTurnEvents,
  http,
  readStream,
  sleep,
  submit,
  type TurnView,
  waitForEvents,
  waitForStatus,
  waitForTurn,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const SLOW_ANSWER = "[[sim token_delay_ms=50 reply_tokens=400]] tell me a long story";

const waitForEvent = (base: string, turnId: string, type: string) =>
  waitForEvents(base, turnId, (events) => events.some((e) => e.type === type));

describe("cancel (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start();
  });
  after(async () => {
    await farm.stop();
  });

  it("cancels a turn while the model streams, and frees the session for the next turn", async () => {
    const accepted = await submit(farm.url, { input: SLOW_ANSWER });
    await waitForEvent(farm.url, accepted.turn_id, "llm_output_delta");
    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${accepted.turn_id}/cancel`);
    expect(reply.status).to.equal(200);
    expect(reply.body.status).to.equal("cancelled");
    expect(reply.body.error?.code).to.equal("cancelled");

    const events = await allTurnEvents(farm.url, accepted.turn_id);
    const terminal = events.at(-1);
    expect(terminal?.type).to.equal("turn_terminal");
    expect(terminal?.data.status).to.equal("cancelled");
    expect(events.filter((e) => e.type === "llm_output")).to.have.length(0);

    const next = await submit(farm.url, { input: "hi", session_id: accepted.session_id });
    expect((await waitForTurn(farm.url, next.turn_id)).status).to.equal("completed");
  });

  it("cancels a turn while a command runs, killing its whole process group", async () => {
    // A background child and a foreground one: both must die with the turn.
    const marker = `${30 + Math.floor(Math.random() * 1_000) / 1_000}`;
    const accepted = await submit(farm.url, {
      input: `[[sim tool=execute_command args={"command":"sleep ${marker}1 & sleep ${marker}"}]] run it`,
    });
    await waitForEvent(farm.url, accepted.turn_id, "tool_call");
    await sleep(300);
    expect(await running(`sleep ${marker}`)).to.equal(true);
    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${accepted.turn_id}/cancel`);
    expect(reply.status).to.equal(200);
    expect(reply.body.status).to.equal("cancelled");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    const results = events.filter((e) => e.type === "tool_result");
    expect(results).to.have.length(1);
    expect(results[0]?.data).to.include({ ok: false, error: "aborted" });
    expect((results[0]?.data.meta as { aborted?: boolean } | undefined)?.aborted).to.equal(true);
    expect(events.at(-1)?.data.status).to.equal("cancelled");
    expect(await running(`sleep ${marker}`)).to.equal(false);
  });

  it("cancels a turn queued behind a busy session without disturbing the running one", async () => {
    const running = await submit(farm.url, {
      input: "[[sim token_delay_ms=20 reply_tokens=40]] go",
    });
    const queued = await submit(farm.url, { input: "after you", session_id: running.session_id });
    await waitForStatus(farm.url, running.turn_id, "running");
    expect(
      (await http<TurnView>(farm.url, "GET", `/v1/turns/${queued.turn_id}`)).body.status,
    ).to.equal("queued");

    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${queued.turn_id}/cancel`);
    expect(reply.status).to.equal(200);
    expect(reply.body.status).to.equal("cancelled");
    const queuedEvents = await allTurnEvents(farm.url, queued.turn_id);
    expect(queuedEvents.map((e) => e.type)).to.deep.equal(["queued", "error", "turn_terminal"]);

    expect((await waitForTurn(farm.url, running.turn_id)).status).to.equal("completed");
    const third = await submit(farm.url, { input: "me next", session_id: running.session_id });
    expect((await waitForTurn(farm.url, third.turn_id)).status).to.equal("completed");
  });

  it("is idempotent: cancelling a finished turn returns it unchanged", async () => {
    const accepted = await submit(farm.url, { input: "hi" });
    const done = await waitForTurn(farm.url, accepted.turn_id);
    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${accepted.turn_id}/cancel`);
    expect(reply.status).to.equal(200);
    expect(reply.body.status).to.equal("completed");
    expect(reply.body.answer).to.equal(done.answer);
    const again = await http<TurnView>(farm.url, "POST", `/v1/turns/${accepted.turn_id}/cancel`);
    expect(again.body.status).to.equal("completed");
  });

  it("a client disconnect does not cancel the turn", async () => {
    const accepted = await submit(farm.url, {
      input: "[[sim token_delay_ms=5 reply_tokens=60]] please list the files",
    });
    const partial = await readStream(farm.url, accepted.turn_id, { maxFrames: 2 });
    expect(partial.ended).to.equal(false);
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("completed");
  });
});

/** Whether a process whose command line contains `pattern` is alive (pgrep -f). */
async function running(pattern: string): Promise<boolean> {
  const { spawnSync } = await import("node:child_process");
  return spawnSync("pgrep", ["-f", pattern]).status === 0;
}

describe("cancel with no worker running (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ workers: 0 });
  });
  after(async () => {
    await farm.stop();
  });

  it("removes a waiting turn from the queue; a worker started later never runs it", async () => {
    const accepted = await submit(farm.url, { input: "never run me" });
    const reply = await http<TurnView>(farm.url, "POST", `/v1/turns/${accepted.turn_id}/cancel`);
    expect(reply.status).to.equal(200);
    expect(reply.body.status).to.equal("cancelled");
    expect(await farm.api.context.queue.getJob(accepted.turn_id)).to.equal(undefined);

    const later = await submit(farm.url, { input: "run me", session_id: accepted.session_id });
    await farm.addWorker();
    expect((await waitForTurn(farm.url, later.turn_id)).status).to.equal("completed");
    const cancelled = await http<TurnView>(farm.url, "GET", `/v1/turns/${accepted.turn_id}`);
    expect(cancelled.body.status).to.equal("cancelled");
    expect(cancelled.body.attempt).to.equal(0);
  });
});
