/**
 * Provider faults from the simulator end in a retried success or a clear failed turn with an
 * error code — never a hang. (The test config retries twice with ≤ 200 ms waits, idle timeout 1 s.)
 */
import { expect } from "chai";
import { endpointBreakerStates } from "../../src/llm/endpoint-breaker.js";
import { allTurnEvents, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

describe("LLM faults (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    // Waits in a worker slot up to 300 ms; a model held longer parks the turn, 2 s at most.
    farm = await TestFarm.start({ env: { MODEL_WAIT_MAX_MS: "300", MODEL_DEFER_MAX_MS: "2000" } });
  });
  after(async () => {
    await farm.stop();
  });

  async function run(input: string) {
    const accepted = await submit(farm.url, { input });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    return { turn, events: await allTurnEvents(farm.url, accepted.turn_id) };
  }

  it("429 with Retry-After once → retried, then completed", async () => {
    const { turn, events } = await run("[[sim fault=429 fault_times=1]] hello");
    expect(turn.status).to.equal("completed");
    const retries = events.filter((e) => e.type === "llm_stream_retry");
    expect(retries).to.have.length(1);
    expect(retries[0]?.data).to.include({ reason: "rate_limited", will_retry: true, attempt: 1 });
    // Retry-After asked for 1 s: the model is held that long for every worker, in full.
    expect(retries[0]?.data.delay_ms).to.equal(1_000);
  });

  it("500 on every attempt → failed with llm_unavailable after the configured retries", async () => {
    const { turn, events } = await run("[[sim fault=500]] hello");
    expect(turn.status).to.equal("failed");
    expect(turn.error).to.deep.include({ code: "llm_unavailable", retryable: true });
    const retries = events.filter((e) => e.type === "llm_stream_retry");
    expect(retries.map((e) => e.data.will_retry)).to.deep.equal([true, true, false]);
    expect(events.at(-2)?.type).to.equal("error");
    expect(events.at(-1)?.data).to.deep.include({ status: "failed", retryable: true });
  });

  it("broken tool-call JSON → an ok:false tool result the model corrects, then completed", async () => {
    const { turn, events } = await run(
      "[[sim fault=broken_tool_json fault_times=1]] please list the files",
    );
    expect(turn.status).to.equal("completed");
    const results = events.filter((e) => e.type === "tool_result");
    expect(results).to.have.length(2);
    expect(results[0]?.data.ok).to.equal(false);
    expect(results[0]?.data.error).to.match(/arguments are not valid JSON/);
    expect(results[1]?.data.ok).to.equal(true);
  });

  it("a hung response → idle timeout, retried, then completed", async () => {
    const { turn, events } = await run("[[sim fault=hang fault_times=1]] hello");
    expect(turn.status).to.equal("completed");
    const retry = events.find((e) => e.type === "llm_stream_retry");
    expect(retry?.data).to.include({ reason: "timeout", will_retry: true });
  });

  it("a stream cut before the first token → a network retry with backoff, then completed", async () => {
    const { turn, events } = await run("[[sim fault=cut fault_times=1]] hello");
    expect(turn.status).to.equal("completed");
    expect(turn.answer).to.match(/^You asked: hello\./);
    const retries = events.filter((e) => e.type === "llm_stream_retry");
    expect(retries).to.have.length(1);
    expect(retries[0]?.data).to.include({
      reason: "network",
      will_retry: true,
      attempt: 1,
      reset_output: false,
    });
    expect(retries[0]?.data.delay_ms).to.be.within(1, 200);
  });

  it("context length exceeded → failed with context_window_exceeded, not retried", async () => {
    const { turn, events } = await run("[[sim fault=context_overflow]] hello");
    expect(turn.status).to.equal("failed");
    expect(turn.error).to.deep.include({ code: "context_window_exceeded", retryable: false });
    const retries = events.filter((e) => e.type === "llm_stream_retry");
    expect(retries.map((e) => e.data.will_retry)).to.deep.equal([false]);
  });

  it("a model answering 429 forever → parked, then failed rate_limited after MODEL_DEFER_MAX_MS", async () => {
    const { turn, events } = await run("[[sim fault=429 retry_after_s=0]] hello");
    expect(turn.status).to.equal("failed");
    expect(turn.error).to.deep.include({ code: "rate_limited", retryable: true });
    const parked = events.filter(
      (e) => e.type === "progress" && e.data.stage === "waiting_for_model",
    );
    expect(parked.length, "parked at least once").to.be.greaterThan(0);
    expect(parked[0]?.data).to.include({ reason: "cooldown" });
  });

  it("a tool the turn may not use, and invalid arguments → ok:false results, the turn goes on", async () => {
    const accepted = await submit(farm.url, {
      input: "please list the files",
      tools: ["read_file"],
    });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    expect(turn.status).to.equal("completed");
    expect(turn.answer).to.match(/not available/);

    const { turn: invalid, events } = await run('[[sim tool=read_file args={"path": 42}]] read it');
    expect(invalid.status).to.equal("completed");
    const result = events.find((e) => e.type === "tool_result");
    expect(result?.data.ok).to.equal(false);
    expect(result?.data.error).to.match(/invalid arguments for read_file: path/);
  });
});

describe("LLM endpoint circuit breaker (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    // The simulator model with a breaker that opens after 2 failures in a row, for a minute.
    farm = await TestFarm.start({
      models: (simUrl) => ({
        sim: {
          baseUrl: simUrl,
          apiKey: "sim",
          model: "farm-sim-1",
          breakerThreshold: 2,
          breakerHalfOpenAfterMs: 60_000,
        },
      }),
    });
  });
  after(async () => {
    await farm.stop();
  });

  async function run(input: string) {
    const accepted = await submit(farm.url, { input });
    const turn = await waitForTurn(farm.url, accepted.turn_id);
    const events = await allTurnEvents(farm.url, accepted.turn_id);
    return { turn, retries: events.filter((e) => e.type === "llm_stream_retry") };
  }

  it("opens after repeated 500s; the next turn fails fast with llm_unavailable", async () => {
    const first = await run("[[sim fault=500]] hello");
    expect(first.turn.status).to.equal("failed");
    expect(first.turn.error).to.deep.include({ code: "llm_unavailable", retryable: true });
    expect(first.retries.map((e) => e.data.reason)).to.deep.equal([
      "provider_error",
      "provider_error",
      "circuit_open",
    ]);
    const endpoint = farm.sim.url;
    expect(endpointBreakerStates()).to.deep.include({ endpoint, state: "open" });

    // A healthy request now: the circuit refuses it before it reaches the simulator.
    const started = Date.now();
    const second = await run("hello again");
    expect(second.turn.status).to.equal("failed");
    expect(second.turn.error).to.deep.include({ code: "llm_unavailable", retryable: true });
    expect(second.turn.error?.message).to.match(
      new RegExp(`^model endpoint ${endpoint} is failing; circuit open, next trial in \\d+ ms$`),
    );
    expect(second.retries.map((e) => e.data.reason)).to.deep.equal([
      "circuit_open",
      "circuit_open",
      "circuit_open",
    ]);
    expect(second.retries.map((e) => e.data.will_retry)).to.deep.equal([true, true, false]);
    expect(Date.now() - started, "fails fast").to.be.below(5_000);
  });
});
