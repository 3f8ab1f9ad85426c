/**
 * Compaction on demand and token accounting, end to end (real API, worker, simulator over HTTP,
 * Redis): POST /v1/sessions/{id}/compaction on an idle and on a busy session, what the next
 * turn sees, the occupancy/consumption split in GET /v1/turns/{id} and GET /v1/sessions/{id},
 * and a turn resumed after a crash that replays its compaction instead of summarising again.
 */
import { expect } from "chai";
import type { EventEnvelope } from "../../src/events/envelope.js";
import {
  type Accepted,
  allTurnEvents,
  type ErrorBody,
  http,
  submit,
  type TurnView,
  waitForEvents,
  waitForTurn,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const WINDOW_TOKENS = 8_192;

/** Input for a turn whose command prints `lines` lines of about 15 tokens each. */
const bigOutput = (lines: number, i: number, extra = "") =>
  `[[sim tool=execute_command args={"command":"seq 1 ${lines} | sed 's/^/line ${i} of a long build log with some words: /'"} ${extra}]] step ${i}`;

async function completedTurn(farm: TestFarm, input: string, sessionId?: string) {
  const accepted = await submit(farm.url, {
    input,
    ...(sessionId ? { session_id: sessionId } : {}),
  });
  const turn = await waitForTurn(farm.url, accepted.turn_id, 30_000);
  expect(turn.status, JSON.stringify(turn.error)).to.equal("completed");
  return { accepted, turn };
}

const compact = (farm: TestFarm, sessionId: string, body?: unknown, key?: string) =>
  http<Accepted & ErrorBody>(farm.url, "POST", `/v1/sessions/${sessionId}/compaction`, body, {
    ...(key ? { "Idempotency-Key": key } : {}),
  });

const ofType = (events: EventEnvelope[], type: string) => events.filter((e) => e.type === type);

describe("compaction on demand and token accounting (end to end)", function () {
  this.timeout(90_000);

  describe("on one farm", () => {
    let farm: TestFarm;
    before(async () => {
      farm = await TestFarm.start({ env: { SIM_CONTEXT_WINDOW_TOKENS: String(WINDOW_TOKENS) } });
    });
    after(async () => {
      await farm.stop();
    });

    it("compacts an idle session on demand; the next turn starts from the summary", async () => {
      const first = await completedTurn(farm, bigOutput(20, 1));
      const sessionId = first.accepted.session_id;
      await completedTurn(farm, bigOutput(20, 2), sessionId);
      const third = await completedTurn(farm, "what did the build log say?", sessionId);

      const reply = await compact(farm, sessionId);
      expect(reply.status).to.equal(202);
      const turn = await waitForTurn(farm.url, reply.body.turn_id);
      expect(turn).to.include({
        status: "completed",
        kind: "compaction",
        stop_reason: "compacted",
      });
      const events = await allTurnEvents(farm.url, reply.body.turn_id);
      const [event] = ofType(events, "compaction");
      expect(event?.data).to.include({
        reason: "manual",
        trigger: "manual",
        strategy: "summary",
        status: "done",
      });
      expect(Number(event?.data.tokens_after)).to.be.below(Number(event?.data.tokens_before));
      expect(ofType(events, "llm_output")).to.have.length(0);
      // The summary call is the turn's consumption; the compacted context its occupancy.
      expect(turn.usage?.model_calls).to.equal(1);
      expect(turn.usage?.compaction_tokens).to.be.above(0);
      expect(turn.usage?.total_tokens).to.equal(turn.usage?.compaction_tokens);
      expect(turn.usage?.context_tokens).to.equal(event?.data.tokens_after);

      const store = farm.api.context.store;
      const snapshot = await store.latestSnapshot(sessionId);
      expect(snapshot?.reason).to.equal("compaction");
      const summary = snapshot?.messages.find((m) => m.role === "user" && m.summary === true);
      expect(summary?.content).to.match(/^\[Context Summary\]/);
      // The history itself is untouched: compaction changes what the model sees, not the record.
      expect((await store.loadHistory(sessionId)).some((m) => "summary" in m)).to.equal(false);

      // Compacting again at the same point replaces that snapshot (no history item was added).
      const again = await compact(farm, sessionId);
      const second = await waitForTurn(farm.url, again.body.turn_id);
      expect(second.stop_reason).to.equal("compacted");
      const replaced = await store.latestSnapshot(sessionId);
      expect(replaced?.historyLength).to.equal(snapshot?.historyLength);
      expect(replaced?.seq).to.be.above(Number(snapshot?.seq));

      // The next turn loads the snapshot: its first request is smaller than the last one before
      // the compaction, though it holds one more exchange.
      const firstRequest = async (turnId: string) =>
        ofType(await allTurnEvents(farm.url, turnId), "context_usage")[0]?.data;
      const before = await firstRequest(third.accepted.turn_id);
      const next = await completedTurn(farm, "and now?", sessionId);
      const usage = await firstRequest(next.accepted.turn_id);
      expect(Number(usage?.projected_request_tokens)).to.be.below(
        Number(before?.projected_request_tokens),
      );
      expect(usage?.message_count).to.equal(Number(replaced?.messages.length) + 1);
    });

    it("queues a compaction behind the running turn of a busy session", async () => {
      const first = await completedTurn(farm, bigOutput(20, 3));
      const sessionId = first.accepted.session_id;
      const running = await submit(farm.url, {
        input: "[[sim token_delay_ms=20 reply_tokens=200]] take your time",
        session_id: sessionId,
      });
      await waitForEvents(farm.url, running.turn_id, (events) =>
        events.some((e) => e.type === "llm_output_delta"),
      );

      const refused = await compact(farm, sessionId, { on_busy: "reject" });
      expect(refused.status).to.equal(409);
      const reply = await compact(farm, sessionId, {});
      expect(reply.status).to.equal(202);
      const compaction = await waitForTurn(farm.url, reply.body.turn_id, 60_000);
      expect(compaction.status, JSON.stringify(compaction.error)).to.equal("completed");
      const slow = await waitForTurn(farm.url, running.turn_id, 60_000);
      expect(slow.status, JSON.stringify(slow.error)).to.equal("completed");
      // It compacted what the running turn left: the slow turn ended before it started.
      const events = await allTurnEvents(farm.url, reply.body.turn_id);
      const started = ofType(events, "progress").find((e) => e.data.stage === "start");
      const slowEnd = ofType(await allTurnEvents(farm.url, running.turn_id), "turn_terminal")[0];
      expect(Number(started?.seq)).to.be.above(Number(slowEnd?.seq));
      expect(ofType(events, "compaction")[0]?.data).to.include({ reason: "manual" });
    });

    it("reports a session with nothing to compact, and refuses bad requests clearly", async () => {
      const { accepted } = await completedTurn(farm, "hello");
      const reply = await compact(farm, accepted.session_id, undefined, "k-nothing");
      expect(reply.status).to.equal(202);
      const turn = await waitForTurn(farm.url, reply.body.turn_id);
      expect(turn).to.include({ status: "completed", stop_reason: "nothing_to_compact" });
      const [event] = ofType(await allTurnEvents(farm.url, reply.body.turn_id), "compaction");
      expect(event?.data).to.include({ status: "skipped", skip_reason: "no_candidates" });
      // Same key, same body: the same compaction; another body: refused.
      const again = await compact(farm, accepted.session_id, undefined, "k-nothing");
      expect(again.body.turn_id).to.equal(reply.body.turn_id);
      const other = await compact(farm, accepted.session_id, { model: "sim" }, "k-nothing");
      expect(other.status).to.equal(422);

      // Two short exchanges: a summary would be longer than what it replaces.
      const tiny = await completedTurn(farm, "[[sim reply_tokens=1]] hi");
      await completedTurn(farm, "hello again", tiny.accepted.session_id);
      const short = await compact(farm, tiny.accepted.session_id);
      const shortTurn = await waitForTurn(farm.url, short.body.turn_id);
      expect(shortTurn.stop_reason).to.equal("nothing_to_compact");
      const [noGain] = ofType(await allTurnEvents(farm.url, short.body.turn_id), "compaction");
      expect(noGain?.data).to.include({ status: "skipped", skip_reason: "no_gain" });
      expect(shortTurn.usage?.model_calls, "the summary was asked for, and billed").to.equal(1);
      expect(await farm.api.context.store.latestSnapshot(tiny.accepted.session_id)).to.equal(null);

      const unknown = await compact(farm, "sess_does_not_exist");
      expect(unknown.status).to.equal(404);
      const foreign = await compact(farm, accepted.session_id, { user_id: "someone-else" });
      expect(foreign.status).to.equal(404);
      const bad = await compact(farm, accepted.session_id, { model: "", extra: 1 });
      expect(bad.status).to.equal(400);
      const fields = (bad.body.error.details as { field: string }[]).map((d) => d.field);
      expect(fields).to.include.members(["model"]);
      const unknownModel = await compact(farm, accepted.session_id, { model: "nope" });
      expect(unknownModel.status).to.equal(400);
    });

    it("splits occupancy from consumption in the turn and the session", async () => {
      const { accepted, turn } = await completedTurn(farm, bigOutput(10, 4, "rounds=2"));
      const usage = turn.usage;
      expect(usage?.model_calls).to.equal(3);
      expect(usage?.context_window_tokens).to.equal(WINDOW_TOKENS);
      const events = await allTurnEvents(farm.url, accepted.turn_id);
      const reported = ofType(events, "token_usage").map((e) => e.data);
      const sum = (k: string) => reported.reduce((n, u) => n + Number(u[k]), 0);
      expect(usage?.input_tokens).to.equal(sum("input_tokens"));
      expect(usage?.output_tokens).to.equal(sum("output_tokens"));
      // Occupancy is the last call's prompt + answer, well below what the turn consumed.
      const last = reported.at(-1);
      expect(usage?.context_tokens).to.equal(
        Number(last?.input_tokens) + Number(last?.output_tokens),
      );
      expect(usage?.context_tokens).to.be.below(Number(usage?.total_tokens));

      // Before each call after the first, occupancy comes from the provider's last report.
      const before = ofType(events, "context_usage").map((e) => e.data);
      expect(before[0]).to.include({ context_usage_source: "estimated" });
      expect(before[1]).to.include({ context_usage_source: "provider_observed" });
      expect(before[1]?.observed_context_tokens).to.equal(
        Number(reported[0]?.input_tokens) + Number(reported[0]?.output_tokens),
      );
      expect(Number(before[1]?.context_tokens)).to.be.above(
        Number(before[1]?.observed_context_tokens),
      );

      const roundUsage = ofType(events, "round_usage")[0]?.data;
      expect(roundUsage).to.include({
        request_consumed_tokens: usage?.total_tokens,
        context_occupancy_tokens: usage?.context_tokens,
        model_calls: 3,
      });

      const second = await completedTurn(farm, "thanks", accepted.session_id);
      const session = await http<{ usage: Record<string, number> }>(
        farm.url,
        "GET",
        `/v1/sessions/${accepted.session_id}`,
      );
      const both = [turn, second.turn] as TurnView[];
      expect(session.body.usage).to.deep.equal({
        input_tokens: both.reduce((n, t) => n + Number(t.usage?.input_tokens), 0),
        output_tokens: both.reduce((n, t) => n + Number(t.usage?.output_tokens), 0),
        total_tokens: both.reduce((n, t) => n + Number(t.usage?.total_tokens), 0),
        turns: 2,
        context_tokens: second.turn.usage?.context_tokens,
      });
    });
  });

  it("replays a compaction on resume instead of summarising again", async () => {
    const farm = await TestFarm.start({
      workers: 0,
      env: {
        SIM_CONTEXT_WINDOW_TOKENS: String(WINDOW_TOKENS),
        WORKER_LOCK_DURATION_MS: "1500",
        WORKER_STALLED_INTERVAL_MS: "500",
        SESSION_LEASE_TTL_MS: "1500",
      },
    });
    try {
      const victim = await farm.spawnWorker();
      const first = await completedTurn(farm, bigOutput(60, 5, "rounds=2"));
      const sessionId = first.accepted.session_id;
      const accepted = await submit(farm.url, {
        input: bigOutput(60, 6, "rounds=3 token_delay_ms=20 reply_tokens=300"),
        session_id: sessionId,
      });
      // Kill once a compaction is recorded and a later answer is streaming.
      const seen = await waitForEvents(farm.url, accepted.turn_id, (events) => {
        const compaction = events.find((e) => e.type === "compaction");
        return (
          compaction !== undefined &&
          events.some((e) => e.type === "llm_output_delta" && e.seq > compaction.seq)
        );
      });
      const before = ofType(seen, "compaction");
      victim.kill("SIGKILL");
      const rescuer = await farm.spawnWorker();

      const turn = await waitForTurn(farm.url, accepted.turn_id, 60_000);
      expect(turn.status).to.equal("completed");
      expect(turn.attempt).to.equal(2);
      const after = ofType(await allTurnEvents(farm.url, accepted.turn_id), "compaction");
      // One event per compaction: the resumed attempt replayed them and recorded nothing new.
      expect(after.map((e) => e.seq)).to.deep.equal(before.map((e) => e.seq));
      expect(before[0]?.data).to.include({ strategy: "summary" });
      const lines = rescuer.logs
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.turn_id === accepted.turn_id);
      const messages = lines.map((l) => l.message);
      expect(messages.filter((m) => m === "context compaction replayed")).to.have.length(
        before.length,
      );
      expect(messages).to.not.include("context compacted");
      // The summary the first attempt paid for stays in the turn's consumption.
      const summaryUsage = before[0]?.data.summary_usage as { total_tokens: number };
      expect(summaryUsage.total_tokens).to.be.above(0);
      expect(turn.usage?.compaction_tokens).to.equal(summaryUsage.total_tokens);
    } finally {
      await farm.stop();
    }
  });
});
