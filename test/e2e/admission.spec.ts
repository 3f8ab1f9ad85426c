/**
 * Admission over real HTTP: a submit the farm cannot take is refused before anything is stored —
 * 429 when the user's queue is full, 503 when the farm is behind (too many waiting turns, or a
 * runnable turn waiting too long for a worker), 409 for `on_busy: "reject"` on a busy session —
 * each with the error envelope, `retryable: true` and the documented details and Retry-After.
 * A refused request's retry (same Idempotency-Key) is judged afresh and becomes a new turn; a
 * retry of an accepted request is never refused. `on_busy` never reveals another user's session.
 */
import { expect } from "chai";
import { ErrorEnvelopeSchema } from "../../src/contract/errors.js";
import {
  type Accepted,
  cancelTurns,
  type ErrorBody,
  type HttpReply,
  http,
  SLOW_TURN_INPUT,
  sleep,
  submit,
  type TurnView,
  waitForStatus,
  waitForTurn,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

type SubmitReply = HttpReply<Accepted & ErrorBody>;

const post = (
  farm: TestFarm,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) => http<Accepted & ErrorBody>(farm.url, "POST", "/v1/turns", body, headers);

const getTurn = async (farm: TestFarm, turnId: string) =>
  (await http<TurnView>(farm.url, "GET", `/v1/turns/${turnId}`)).body;

/** Checks the refusal's status, envelope (against the contract schema) and code; returns details. */
function refusal(reply: SubmitReply, status: number, code: string): Record<string, unknown> {
  expect(reply.status, JSON.stringify(reply.body)).to.equal(status);
  const envelope = ErrorEnvelopeSchema.safeParse(reply.body);
  expect(envelope.success, JSON.stringify(reply.body)).to.equal(true);
  expect(Object.keys(reply.body)).to.deep.equal(["error"]);
  expect(reply.body.error.code).to.equal(code);
  expect(reply.body.error.retryable).to.equal(true);
  expect(reply.body.error.message).to.be.a("string").and.not.equal("");
  return reply.body.error.details as Record<string, unknown>;
}

/** Submits, records the turn for cleanup and waits until a worker runs it. */
async function startRunning(
  farm: TestFarm,
  turns: string[],
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Accepted> {
  const accepted = await submit(farm.url, body, headers);
  turns.push(accepted.turn_id);
  await waitForStatus(farm.url, accepted.turn_id, "running");
  return accepted;
}

async function stopFarm(farm: TestFarm | undefined, turns: string[]): Promise<void> {
  if (!farm) return;
  // Newest first, so a queued turn is gone before the running one ends and could free its place.
  await cancelTurns(farm.url, [...turns].reverse());
  await farm.stop();
}

describe("admission: per-user queue limit (end to end)", () => {
  let farm: TestFarm;
  const turns: string[] = [];

  before(async () => {
    farm = await TestFarm.start({
      env: { FAIR_MAX_QUEUED_PER_USER: "3", FAIR_MAX_RUNNING_PER_USER: "1" },
    });
  });
  after(() => stopFarm(farm, turns));

  it("answers 429 user_queue_full, still admits other users and replays, and stores nothing", async () => {
    const user = "quota-heavy";
    await startRunning(farm, turns, { input: SLOW_TURN_INPUT, user_id: user });
    const queued: Accepted[] = [];
    for (let i = 0; i < 3; i++) {
      const body = { input: `${SLOW_TURN_INPUT} #${i}`, user_id: user };
      const accepted = await submit(farm.url, body, { "Idempotency-Key": `quota-ok-${i}` });
      turns.push(accepted.turn_id);
      queued.push(accepted);
    }
    for (const turn of queued)
      expect((await getTurn(farm, turn.turn_id)).status).to.equal("queued");

    // One running, three waiting: the fourth waiting turn is one too many.
    const refusedBody = { input: "one too many", user_id: user, session_id: "quota-refused" };
    const refused = await post(farm, refusedBody, { "Idempotency-Key": "quota-refused-key" });
    expect(refusal(refused, 429, "user_queue_full")).to.deep.equal({
      reason: "user_queue_full",
      queued: 3,
      limit: 3,
    });
    expect(refused.headers.get("retry-after")).to.equal(
      String(farm.config.scheduler.userQueueFullRetryAfterS),
    );
    expect(refused.headers.get("idempotent-replayed")).to.equal(null);
    // Asking for the event stream instead changes nothing: the refusal comes before any stream.
    const streamed = await post(farm, refusedBody, {
      "Idempotency-Key": "quota-refused-key",
      Accept: "text/event-stream",
    });
    expect(refusal(streamed, 429, "user_queue_full")).to.include({ queued: 3, limit: 3 });
    expect(streamed.headers.get("content-type")).to.match(/^application\/json/);
    expect(streamed.headers.get("retry-after")).to.equal(refused.headers.get("retry-after"));
    // Nothing was stored: the session the request named does not exist.
    expect((await http(farm.url, "GET", "/v1/sessions/quota-refused")).status).to.equal(404);

    // Another user is not held back by this one's backlog.
    const other = await post(farm, { input: "hi", user_id: "quota-light" });
    expect(other.status).to.equal(202);
    expect((await waitForTurn(farm.url, other.body.turn_id)).status).to.equal("completed");

    // A retry of an accepted request passes the full queue and returns its turn.
    const replay = await post(
      farm,
      { input: `${SLOW_TURN_INPUT} #1`, user_id: user },
      { "Idempotency-Key": "quota-ok-1" },
    );
    expect(replay.status).to.equal(202);
    expect(replay.headers.get("idempotent-replayed")).to.equal("true");
    expect(replay.body).to.include({ turn_id: queued[1]?.turn_id, status: "queued" });
    // …without queueing the turn a second time.
    const again = await post(farm, refusedBody, { "Idempotency-Key": "quota-refused-key" });
    expect(refusal(again, 429, "user_queue_full")).to.include({ queued: 3, limit: 3 });

    // Once a place frees up, the refused request's retry (same key) is a new turn, not a replay.
    const freed = await http<TurnView>(farm.url, "POST", `/v1/turns/${queued[2]?.turn_id}/cancel`);
    expect(freed.body.status).to.equal("cancelled");
    const retried = await post(farm, refusedBody, { "Idempotency-Key": "quota-refused-key" });
    expect(retried.status, JSON.stringify(retried.body)).to.equal(202);
    expect(retried.headers.get("idempotent-replayed")).to.equal(null);
    turns.push(retried.body.turn_id);
    expect(turns.slice(0, -1)).to.not.include(retried.body.turn_id);
    expect(retried.body.session_id).to.equal("quota-refused");
    const session = await http<{ turns: { turn_id: string }[] }>(
      farm.url,
      "GET",
      "/v1/sessions/quota-refused",
    );
    expect(session.body.turns.map((t) => t.turn_id)).to.deep.equal([retried.body.turn_id]);
    // From now on the key is taken: the same request replays it.
    const replayOfRetry = await post(farm, refusedBody, { "Idempotency-Key": "quota-refused-key" });
    expect(replayOfRetry.status).to.equal(202);
    expect(replayOfRetry.headers.get("idempotent-replayed")).to.equal("true");
    expect(replayOfRetry.body.turn_id).to.equal(retried.body.turn_id);
  });
});

describe("admission: overload by queue depth (end to end)", () => {
  let farm: TestFarm;
  const turns: string[] = [];

  before(async () => {
    farm = await TestFarm.start({
      env: { FAIR_OVERLOAD_QUEUE_DEPTH: "2", FAIR_MAX_RUNNING_PER_USER: "1" },
    });
  });
  after(() => stopFarm(farm, turns));

  it("answers 503 overloaded_queue_depth to everyone, replays still pass, and recovers", async () => {
    await startRunning(farm, turns, { input: SLOW_TURN_INPUT, user_id: "depth-a" });
    const waitingBody = { input: `${SLOW_TURN_INPUT} second`, user_id: "depth-a" };
    const waiting = await submit(farm.url, waitingBody, { "Idempotency-Key": "depth-waiting" });
    const third = await submit(farm.url, { input: `${SLOW_TURN_INPUT} third`, user_id: "depth-a" });
    turns.push(waiting.turn_id, third.turn_id);

    const refusedBody = { input: "hello", user_id: "depth-b", session_id: "depth-refused" };
    const refused = await post(farm, refusedBody, { "Idempotency-Key": "depth-refused-key" });
    expect(refusal(refused, 503, "overloaded")).to.deep.equal({
      reason: "overloaded_queue_depth",
      queue_depth: 2,
    });
    expect(refused.headers.get("retry-after")).to.equal(
      String(farm.config.scheduler.overloadRetryAfterS),
    );
    expect((await http(farm.url, "GET", "/v1/sessions/depth-refused")).status).to.equal(404);
    // The overload is farm-wide: the busy user is refused too, whatever its own queue.
    const own = await post(farm, { input: "me too", user_id: "depth-a" });
    expect(refusal(own, 503, "overloaded").reason).to.equal("overloaded_queue_depth");

    const replay = await post(farm, waitingBody, { "Idempotency-Key": "depth-waiting" });
    expect(replay.status).to.equal(202);
    expect(replay.headers.get("idempotent-replayed")).to.equal("true");
    expect(replay.body.turn_id).to.equal(waiting.turn_id);

    await http(farm.url, "POST", `/v1/turns/${third.turn_id}/cancel`);
    const retried = await post(farm, refusedBody, { "Idempotency-Key": "depth-refused-key" });
    expect(retried.status, JSON.stringify(retried.body)).to.equal(202);
    expect(retried.headers.get("idempotent-replayed")).to.equal(null);
    turns.push(retried.body.turn_id);
    expect(retried.body.session_id).to.equal("depth-refused");
  });
});

describe("admission: overload by waiting time (end to end)", () => {
  let farm: TestFarm;
  const turns: string[] = [];

  before(async () => {
    // One worker slot, no prefetch: a second runnable turn has to wait in the fair queue.
    farm = await TestFarm.start({
      env: {
        FAIR_OVERLOAD_WAIT_MS: "300",
        WORKER_CONCURRENCY: "1",
        FAIR_DISPATCH_PREFETCH: "0",
      },
    });
  });
  after(() => stopFarm(farm, turns));

  it("answers 503 overloaded_wait once a runnable turn waited too long, and recovers", async () => {
    const running = await startRunning(farm, turns, { input: SLOW_TURN_INPUT, user_id: "wait-a" });
    const waiting = await submit(farm.url, { input: "hi", user_id: "wait-b" });
    turns.push(waiting.turn_id);

    // Let the runnable turn age past the limit (read off the admin view, not a timer).
    let runnableAge = 0;
    for (let i = 0; i < 200 && runnableAge <= 400; i++) {
      const overview = await http<{ oldest_runnable_age_ms: number | null }>(
        farm.url,
        "GET",
        "/v1/admin/queues",
      );
      runnableAge = overview.body.oldest_runnable_age_ms ?? 0;
      if (runnableAge <= 400) await sleep(25);
    }
    expect(runnableAge).to.be.greaterThan(400);
    expect((await getTurn(farm, waiting.turn_id)).status).to.equal("queued");

    const refusedBody = { input: "hello", user_id: "wait-c" };
    const refused = await post(farm, refusedBody, { "Idempotency-Key": "wait-refused-key" });
    const details = refusal(refused, 503, "overloaded");
    expect(details.reason).to.equal("overloaded_wait");
    expect(details.oldest_wait_ms).to.be.a("number").and.greaterThan(300);
    expect(refused.headers.get("retry-after")).to.equal(
      String(farm.config.scheduler.overloadRetryAfterS),
    );

    // The worker frees up, the waiting turn runs, and the same request is taken as a new turn.
    await http(farm.url, "POST", `/v1/turns/${running.turn_id}/cancel`);
    expect((await waitForTurn(farm.url, waiting.turn_id)).status).to.equal("completed");
    const retried = await post(farm, refusedBody, { "Idempotency-Key": "wait-refused-key" });
    expect(retried.status, JSON.stringify(retried.body)).to.equal(202);
    expect(retried.headers.get("idempotent-replayed")).to.equal(null);
    turns.push(retried.body.turn_id);
    expect((await waitForTurn(farm.url, retried.body.turn_id)).status).to.equal("completed");
  });
});

describe("admission: on_busy (end to end)", () => {
  let farm: TestFarm;
  const turns: string[] = [];

  before(async () => {
    // One running turn per user, so a user's second session can hold a turn that only waits.
    farm = await TestFarm.start({ env: { FAIR_MAX_RUNNING_PER_USER: "1" } });
  });
  after(() => stopFarm(farm, turns));

  it('"reject" on a session with a running turn → 409 session_busy naming it', async () => {
    const running = await startRunning(farm, turns, {
      input: SLOW_TURN_INPUT,
      user_id: "busy-a",
      session_id: "busy-running",
    });
    const body = {
      input: "now?",
      user_id: "busy-a",
      session_id: "busy-running",
      on_busy: "reject",
    };
    const refused = await post(farm, body);
    expect(refusal(refused, 409, "session_busy")).to.deep.equal({
      reason: "session_busy",
      blocking_turn_id: running.turn_id,
    });
    // With a turn queued behind it, the one in the way is still the running turn.
    const behind = await submit(farm.url, { ...body, input: "after you", on_busy: "enqueue" });
    turns.push(behind.turn_id);
    expect(refusal(await post(farm, body), 409, "session_busy").blocking_turn_id).to.equal(
      running.turn_id,
    );
    const session = await http<{ turns: unknown[] }>(farm.url, "GET", "/v1/sessions/busy-running");
    expect(session.body.turns).to.have.length(2);
  });

  it('"reject" on a session whose turn is only queued → 409 naming the queued turn', async () => {
    // The user's one running place is taken elsewhere, so this session's turn only waits.
    await startRunning(farm, turns, {
      input: SLOW_TURN_INPUT,
      user_id: "busy-q",
      session_id: "busy-other",
    });
    const queued = await submit(farm.url, {
      input: SLOW_TURN_INPUT,
      user_id: "busy-q",
      session_id: "busy-queued",
    });
    turns.push(queued.turn_id);
    expect((await getTurn(farm, queued.turn_id)).status).to.equal("queued");
    const refused = await post(farm, {
      input: "now?",
      user_id: "busy-q",
      session_id: "busy-queued",
      on_busy: "reject",
    });
    expect(refusal(refused, 409, "session_busy")).to.deep.equal({
      reason: "session_busy",
      blocking_turn_id: queued.turn_id,
    });
    // Cancelling the waiting turn leaves the session idle: "reject" gets in now.
    await http(farm.url, "POST", `/v1/turns/${queued.turn_id}/cancel`);
    expect((await getTurn(farm, queued.turn_id)).status).to.equal("cancelled");
    const accepted = await post(farm, {
      input: SLOW_TURN_INPUT,
      user_id: "busy-q",
      session_id: "busy-queued",
      on_busy: "reject",
    });
    expect(accepted.status, JSON.stringify(accepted.body)).to.equal(202);
    turns.push(accepted.body.turn_id);
  });

  it("another user's session answers 404 with on_busy reject (its existence is not revealed)", async () => {
    for (const onBusy of ["reject", "enqueue"]) {
      const reply = await post(farm, {
        input: "let me in",
        user_id: "busy-intruder",
        session_id: "busy-running",
        on_busy: onBusy,
      });
      expect(reply.status, JSON.stringify(reply.body)).to.equal(404);
      expect(ErrorEnvelopeSchema.safeParse(reply.body).success).to.equal(true);
      expect(reply.body.error.code).to.equal("not_found");
      expect(reply.body.error).to.not.have.property("details");
      expect(JSON.stringify(reply.body)).to.not.include("turn_");
    }
  });

  it('a retry of a request accepted with "reject" is replayed even though its session is busy', async () => {
    const body = {
      input: SLOW_TURN_INPUT,
      user_id: "busy-b",
      session_id: "busy-replay",
      on_busy: "reject",
    };
    const first = await post(farm, body, { "Idempotency-Key": "busy-replay-key" });
    expect(first.status).to.equal(202);
    turns.push(first.body.turn_id);
    await waitForStatus(farm.url, first.body.turn_id, "running");
    const replay = await post(farm, body, { "Idempotency-Key": "busy-replay-key" });
    expect(replay.status, JSON.stringify(replay.body)).to.equal(202);
    expect(replay.headers.get("idempotent-replayed")).to.equal("true");
    expect(replay.body.turn_id).to.equal(first.body.turn_id);
    // The same body under a new key is a new request, and the session is busy.
    const fresh = await post(farm, body, { "Idempotency-Key": "busy-replay-other" });
    expect(refusal(fresh, 409, "session_busy").blocking_turn_id).to.equal(first.body.turn_id);
  });

  it('"reject" on an idle or new session is accepted', async () => {
    const done = await submit(farm.url, {
      input: "hi",
      user_id: "busy-c",
      session_id: "busy-idle",
    });
    expect((await waitForTurn(farm.url, done.turn_id)).status).to.equal("completed");
    for (const sessionId of ["busy-idle", "busy-brand-new"]) {
      const reply = await post(farm, {
        input: "hi again",
        user_id: "busy-c",
        session_id: sessionId,
        on_busy: "reject",
      });
      expect(reply.status, JSON.stringify(reply.body)).to.equal(202);
      expect(reply.body.session_id).to.equal(sessionId);
      expect((await waitForTurn(farm.url, reply.body.turn_id)).status).to.equal("completed");
    }
    const noSession = await post(farm, { input: "hi", user_id: "busy-c", on_busy: "reject" });
    expect(noSession.status).to.equal(202);
    expect((await waitForTurn(farm.url, noSession.body.turn_id)).status).to.equal("completed");
  });

  it('"enqueue" (and the default) accept turns for a busy session and run them in order', async () => {
    const session = { user_id: "busy-d", session_id: "busy-order" };
    const first = await submit(farm.url, {
      ...session,
      input: "[[sim token_delay_ms=20 reply_tokens=25]] first",
    });
    const second = await post(farm, { ...session, input: "second", on_busy: "enqueue" });
    const third = await post(farm, { ...session, input: "third" });
    expect([second.status, third.status]).to.deep.equal([202, 202]);
    const ids = [first.turn_id, second.body.turn_id, third.body.turn_id];
    const ended = [];
    for (const id of ids) ended.push(await waitForTurn(farm.url, id));
    expect(ended.map((t) => t.status)).to.deep.equal(["completed", "completed", "completed"]);

    // The session log holds each turn's events in one block, the blocks in submission order.
    const page = await http<{ events: { turn_id: string; type: string }[] }>(
      farm.url,
      "GET",
      "/v1/sessions/busy-order/events?limit=1000",
    );
    const blocks = page.body.events
      .filter((e) => e.type !== "queued")
      .map((e) => e.turn_id)
      .filter((id, i, all) => i === 0 || all[i - 1] !== id);
    expect(blocks).to.deep.equal(ids);
    const starts = ended.map((t) => Date.parse((t as { started_at?: string }).started_at ?? ""));
    expect(starts[0]).to.be.at.most(starts[1] as number);
    expect(starts[1]).to.be.at.most(starts[2] as number);
  });

  it("an invalid on_busy value → 400 naming the field", async () => {
    const reply = await post(farm, { input: "hi", user_id: "busy-e", on_busy: "wait" });
    expect(reply.status).to.equal(400);
    expect(ErrorEnvelopeSchema.safeParse(reply.body).success).to.equal(true);
    expect(reply.body.error.code).to.equal("invalid_request");
    expect(reply.body.error.retryable).to.equal(false);
    const details = reply.body.error.details as { field: string }[];
    expect(details.map((d) => d.field)).to.deep.equal(["on_busy"]);
  });
});

describe("admission: concurrent submits (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    // No worker and no prefetch: nothing is dispatched, so every accepted turn stays waiting.
    farm = await TestFarm.start({
      workers: 0,
      env: { FAIR_MAX_QUEUED_PER_USER: "3", FAIR_DISPATCH_PREFETCH: "0" },
    });
  });
  after(async () => {
    await farm?.stop();
  });

  it("lets exactly as many racing submits in as the user's queue has places", async () => {
    const replies = await Promise.all(
      Array.from({ length: 10 }, (_, i) => post(farm, { input: `race ${i}`, user_id: "race-q" })),
    );
    const statuses = replies.map((r) => r.status).sort();
    expect(statuses).to.deep.equal([202, 202, 202, 429, 429, 429, 429, 429, 429, 429]);
    for (const reply of replies.filter((r) => r.status === 429)) {
      expect(refusal(reply, 429, "user_queue_full")).to.deep.equal({
        reason: "user_queue_full",
        queued: 3,
        limit: 3,
      });
    }
  });

  it('lets exactly one of racing "reject" submits into a new session', async () => {
    const replies = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        post(farm, {
          input: `race ${i}`,
          user_id: "race-s",
          session_id: "race-session",
          on_busy: "reject",
        }),
      ),
    );
    const accepted = replies.filter((r) => r.status === 202);
    expect(accepted).to.have.length(1);
    const winner = accepted[0]?.body;
    for (const reply of replies.filter((r) => r.status !== 202)) {
      // A loser sees the winner's turn, or only its reservation while the turn is being stored.
      const details = refusal(reply, 409, "session_busy");
      expect(details.reason).to.equal("session_busy");
      if (details.blocking_turn_id !== undefined) {
        expect(details.blocking_turn_id).to.equal(winner?.turn_id);
      }
    }
  });
});
