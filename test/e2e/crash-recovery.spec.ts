/**
 * A worker dies (SIGKILL) or is stopped (SIGTERM path) in the middle of a turn: the turn finishes
 * on another worker, and its event log has no gap, no duplicate and one terminal event.
 */
import { expect } from "chai";
import type { EventEnvelope } from "../../src/events/envelope.js";
import {
  allTurnEvents,
  http,
  sleep,
  submit,
  waitForEvents,
  waitForTurn,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

/** Fast stall detection, so a killed worker's turn is picked up within seconds. */
const FAST_RECOVERY = {
  WORKER_LOCK_DURATION_MS: "1500",
  WORKER_STALLED_INTERVAL_MS: "500",
  SESSION_LEASE_TTL_MS: "1500",
};

/** The log of a single-turn session is 1…N, and each logical step appears once. */
function expectCleanLog(events: EventEnvelope[]): void {
  const seqs = events.map((e) => e.seq);
  expect(seqs).to.deep.equal(Array.from({ length: seqs.length }, (_, i) => i + 1));
  const once = (type: string) => events.filter((e) => e.type === type);
  expect(once("turn_terminal")).to.have.length(1);
  expect(events.at(-1)?.type).to.equal("turn_terminal");
  expect(once("final")).to.have.length(1);
  expect(once("queued")).to.have.length(1);
  const rounds = once("llm_output").map((e) => e.data.model_round);
  expect(new Set(rounds).size).to.equal(rounds.length);
  const results = once("tool_result").map((e) => e.data.tool_call_id);
  expect(new Set(results).size).to.equal(results.length);
  const calls = once("tool_call").map((e) => e.data.tool_call_id);
  expect(new Set(calls).size).to.equal(calls.length);
}

describe("crash recovery (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  beforeEach(async () => {
    farm = await TestFarm.start({ workers: 0, env: FAST_RECOVERY });
  });
  afterEach(async () => {
    await farm.stop();
  });

  it("finishes a turn on another worker after SIGKILL mid-stream, without gaps or duplicates", async () => {
    const victim = await farm.spawnWorker();
    const accepted = await submit(farm.url, {
      input: "[[sim token_delay_ms=20 reply_tokens=150]] please list the files",
    });
    // Kill while the second model round is streaming its answer.
    await waitForEvents(farm.url, accepted.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta" && e.data.model_round === 2),
    );
    victim.kill("SIGKILL");
    await farm.spawnWorker();

    const turn = await waitForTurn(farm.url, accepted.turn_id, 30_000);
    expect(turn.status).to.equal("completed");
    expect(turn.attempt).to.equal(2);
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    expectCleanLog(events);
    // Every log line about the turn names its user, session and turn.
    const turnLines = victim.logs
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.turn_id === accepted.turn_id);
    expect(turnLines.map((l) => l.message)).to.include("turn started");
    for (const line of turnLines) {
      expect(line).to.include({ session_id: accepted.session_id, user_id: "anonymous" });
    }
    // Round 1 (the tool round) is not redone; round 2 restarts and tells clients to drop its text.
    expect(events.filter((e) => e.type === "tool_result")).to.have.length(1);
    expect(events.some((e) => e.type === "progress" && e.data.stage === "resumed")).to.equal(true);
    const reset = events.find((e) => e.type === "llm_stream_retry");
    expect(reset?.data).to.include({ model_round: 2, reset_output: true, reason: "turn_resumed" });
    // The answer is the full answer of the redone round, not a splice of both attempts.
    const lastOutput = events.filter((e) => e.type === "llm_output").at(-1);
    expect(turn.answer).to.equal(lastOutput?.data.content);
  });

  it("re-runs a tool that was running when its worker died, and records one result", async () => {
    const victim = await farm.spawnWorker();
    const accepted = await submit(farm.url, {
      input: '[[sim tool=execute_command args={"command":"sleep 1; echo finished"}]] go',
    });
    await waitForEvents(farm.url, accepted.turn_id, (events) =>
      events.some((e) => e.type === "tool_call"),
    );
    victim.kill("SIGKILL");
    await farm.spawnWorker();

    const turn = await waitForTurn(farm.url, accepted.turn_id, 30_000);
    expect(turn.status).to.equal("completed");
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    expectCleanLog(events);
    const result = events.find((e) => e.type === "tool_result");
    expect(result?.data.ok).to.equal(true);
    expect(JSON.stringify(result?.data.data)).to.include("finished");
  });

  it("hands running turns back on graceful stop; another worker resumes them", async () => {
    const leaving = await farm.addWorker();
    const accepted = await submit(farm.url, {
      input: "[[sim token_delay_ms=20 reply_tokens=100]] tell me",
    });
    await waitForEvents(farm.url, accepted.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta"),
    );
    await leaving.stop(50);
    farm.workers.splice(farm.workers.indexOf(leaving), 1);
    const before = await http<{ status: string }>(farm.url, "GET", `/v1/turns/${accepted.turn_id}`);
    expect(before.body.status).to.equal("running");

    await farm.addWorker();
    const turn = await waitForTurn(farm.url, accepted.turn_id, 30_000);
    expect(turn.status).to.equal("completed");
    expect(turn.attempt).to.equal(2);
    expectCleanLog(await allTurnEvents(farm.url, accepted.turn_id));
  });

  it("SIGTERM: a turn that fits in the grace period finishes on the same worker", async () => {
    const worker = await farm.spawnWorker({ SHUTDOWN_GRACE_MS: "20000" });
    const accepted = await submit(farm.url, {
      input: "[[sim token_delay_ms=10 reply_tokens=60]] tell me",
    });
    await waitForEvents(farm.url, accepted.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta"),
    );
    const exited = new Promise<number | null>((resolve) => worker.once("exit", resolve));
    worker.kill("SIGTERM");
    expect(await exited).to.equal(0);
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn).to.include({ status: "completed", attempt: 1 });
  });

  it("SIGTERM: a turn longer than the grace period is handed back and resumed elsewhere", async () => {
    const worker = await farm.spawnWorker({ SHUTDOWN_GRACE_MS: "300" });
    const accepted = await submit(farm.url, {
      input: "[[sim token_delay_ms=20 reply_tokens=100]] tell me",
    });
    await waitForEvents(farm.url, accepted.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta"),
    );
    const exited = new Promise<number | null>((resolve) => worker.once("exit", resolve));
    worker.kill("SIGTERM");
    expect(await exited).to.equal(0);
    expect(worker.logs.some((line) => line.includes("turn handed back"))).to.equal(true);
    await farm.spawnWorker();
    const turn = await waitForTurn(farm.url, accepted.turn_id, 30_000);
    expect(turn).to.include({ status: "completed", attempt: 2 });
    expectCleanLog(await allTurnEvents(farm.url, accepted.turn_id));
  });

  it("retries a turn whose lease expired with no new owner, instead of leaving it stuck", async () => {
    await farm.addWorker();
    const accepted = await submit(farm.url, {
      input: "[[sim token_delay_ms=20 reply_tokens=80]] tell me",
    });
    await waitForEvents(farm.url, accepted.turn_id, (events) =>
      events.some((e) => e.type === "llm_output_delta"),
    );
    // As if Redis had been unreachable past the lease TTL: the lease is simply gone.
    await farm.redis.del(`${farm.config.redis.prefix}:s:${accepted.session_id}:lease`);
    const turn = await waitForTurn(farm.url, accepted.turn_id, 30_000);
    expect(turn).to.include({ status: "completed", attempt: 2 });
    expectCleanLog(await allTurnEvents(farm.url, accepted.turn_id));
  });

  it("closes out an ended turn whose job runs again later without a second turn_terminal", async () => {
    await farm.addWorker();
    const accepted = await submit(farm.url, { input: "hello" });
    await waitForTurn(farm.url, accepted.turn_id);
    await waitForEvents(
      farm.url,
      accepted.turn_id,
      (events) => events.at(-1)?.type === "turn_terminal",
    );
    // Long after the end: the step hash is gone and the job runs once more (e.g. after a crash
    // between storing the outcome and completing the job, recovered late).
    await farm.redis.del(`${farm.config.redis.prefix}:t:${accepted.turn_id}:steps`);
    const queue = farm.api.context.queue;
    await (await queue.getJob(accepted.turn_id))?.remove();
    await queue.add(
      "turn",
      { turnId: accepted.turn_id, sessionId: accepted.session_id, userId: "anonymous" },
      { jobId: accepted.turn_id },
    );
    const job = await queue.getJob(accepted.turn_id);
    for (let i = 0; i < 200 && !(await job?.isCompleted()); i++) await sleep(20);
    expect(await job?.isCompleted()).to.equal(true);
    expectCleanLog(await allTurnEvents(farm.url, accepted.turn_id));
  });
});
