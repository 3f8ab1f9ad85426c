/**
 * Per-model budgets over real HTTP, shared by the workers through Redis: a concurrency limit
 * serialises a model's calls, a requests-per-minute limit parks the turn that would exceed it,
 * a provider's 429 holds the model for every turn — and turns of other models run meanwhile.
 *
 * Models (all served by the farm's simulator): `x-conc` (1 call at a time), `x-rpm` (3 calls a
 * minute), `x-hold` (the one that answers 429; limits set so the admin view lists it), `y` (no
 * limits). A turn waits in its worker slot at most MODEL_WAIT_MAX_MS = 300 ms, then parks.
 */
import { expect } from "chai";
import type { QueueOverview } from "../../src/contract/admin.js";
import type { EventEnvelope } from "../../src/events/envelope.js";
import {
  type Accepted,
  adminQueues,
  allTurnEvents,
  http,
  sleep,
  submit,
  type TurnView,
  waitForEvents,
  waitForTurn,
  waitUntil,
} from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

const X_HOLD_LIMITS = { maxConcurrency: 3, requestsPerMinute: 100 };

function modelsAt(simUrl: string): Record<string, Record<string, unknown>> {
  const base = { baseUrl: simUrl, apiKey: "sim", model: "farm-sim-1", maxRetries: 2 };
  return {
    "x-conc": { ...base, maxConcurrency: 1 },
    "x-rpm": { ...base, requestsPerMinute: 3 },
    "x-hold": { ...base, ...X_HOLD_LIMITS },
    y: base,
  };
}

let users = 0;
/** Each turn gets its own user, so the per-user running cap never holds a turn back here. */
function submitOn(farm: TestFarm, model: string, input: string): Promise<Accepted> {
  return submit(farm.url, { input, model, user_id: `m-user-${++users}` });
}

const isPark = (e: EventEnvelope) => e.type === "progress" && e.data.stage === "waiting_for_model";
const isCall = (e: EventEnvelope) => e.type === "progress" && e.data.stage === "llm_call";

/** From each model call's start (`llm_call`, budget taken) to its recorded output. */
function callIntervals(events: EventEnvelope[]): { start: number; end: number }[] {
  const intervals: { start: number; end: number }[] = [];
  for (const call of events.filter(isCall)) {
    const output = events.find(
      (e) =>
        e.type === "llm_output" && e.data.model_round === call.data.model_round && e.seq > call.seq,
    );
    if (!output) throw new Error(`call of round ${call.data.model_round} has no output`);
    intervals.push({ start: call.ts, end: output.ts });
  }
  return intervals;
}

function modelRow(overview: QueueOverview, model: string) {
  return overview.models.find((m) => m.model === model);
}

describe("model limits (end to end)", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({
      workers: 2,
      env: { MODEL_WAIT_MAX_MS: "300" },
      models: modelsAt,
    });
  });
  after(async () => {
    await farm?.stop();
  });

  it("maxConcurrency 1: calls of 4 concurrent turns never overlap; turns on y run meanwhile", async () => {
    let sampling = true;
    let mostInFlight = 0;
    const sampler = (async () => {
      while (sampling) {
        const row = modelRow(await adminQueues(farm.url), "x-conc");
        mostInFlight = Math.max(mostInFlight, row?.in_flight ?? 0);
        await sleep(25);
      }
    })();
    const xs = await Promise.all(
      [0, 1, 2, 3].map((i) => submitOn(farm, "x-conc", `[[sim ttft_ms=400]] x turn ${i}`)),
    );
    const ys = await Promise.all(
      [0, 1, 2].map((i) => submitOn(farm, "y", `[[sim ttft_ms=400]] y turn ${i}`)),
    );
    const xEnded = await Promise.all(xs.map((t) => waitForTurn(farm.url, t.turn_id, 30_000)));
    const yEnded = await Promise.all(ys.map((t) => waitForTurn(farm.url, t.turn_id, 30_000)));
    sampling = false;
    await sampler;
    expect(xEnded.map((t) => t.status)).to.deep.equal([
      "completed",
      "completed",
      "completed",
      "completed",
    ]);
    expect(yEnded.map((t) => t.status)).to.deep.equal(["completed", "completed", "completed"]);

    const xCalls = (
      await Promise.all(
        xs.map(async (t) => callIntervals(await allTurnEvents(farm.url, t.turn_id))),
      )
    ).flat();
    expect(xCalls).to.have.length(4);
    xCalls.sort((a, b) => a.start - b.start);
    for (let i = 1; i < xCalls.length; i++) {
      const [before, after] = [xCalls[i - 1], xCalls[i]];
      expect(after?.start, `x call ${i} starts after call ${i - 1} ended`).to.be.at.least(
        before?.end ?? Number.POSITIVE_INFINITY,
      );
    }
    expect(mostInFlight, "x-conc calls in flight (admin view)").to.be.at.most(1);

    // y has no limit: its calls ran side by side, all done before x's last call even began.
    const yCalls = (
      await Promise.all(
        ys.map(async (t) => callIntervals(await allTurnEvents(farm.url, t.turn_id))),
      )
    ).flat();
    expect(yCalls).to.have.length(3);
    const yLatestStart = Math.max(...yCalls.map((c) => c.start));
    const yEarliestEnd = Math.min(...yCalls.map((c) => c.end));
    expect(yLatestStart, "y calls overlap").to.be.below(yEarliestEnd);
    const yDone = Math.max(...yCalls.map((c) => c.end));
    expect(yDone, "y done before x's last call").to.be.below(xCalls[3]?.start ?? 0);
  });

  it("requestsPerMinute 3: the 4th turn parks (requests_per_minute); y completes; cancel ends it", async () => {
    for (let i = 0; i < 3; i++) {
      const t = await submitOn(farm, "x-rpm", `x-rpm turn ${i}`);
      expect((await waitForTurn(farm.url, t.turn_id)).status).to.equal("completed");
    }
    const fourth = await submitOn(farm, "x-rpm", "x-rpm turn 4");
    const ys = await Promise.all([0, 1].map((i) => submitOn(farm, "y", `y beside x-rpm ${i}`)));

    const events = await waitForEvents(farm.url, fourth.turn_id, (evs) => evs.some(isPark));
    const park = events.find(isPark);
    expect(park?.data).to.include({ model: "x-rpm", reason: "requests_per_minute" });
    expect(park?.data.retry_after_ms).to.be.greaterThan(300);
    expect(events.some(isCall), "no call made over the limit").to.equal(false);

    const yEnded = await Promise.all(ys.map((t) => waitForTurn(farm.url, t.turn_id)));
    expect(yEnded.map((t) => t.status)).to.deep.equal(["completed", "completed"]);
    const overview = await adminQueues(farm.url);
    expect(modelRow(overview, "x-rpm")).to.deep.include({
      limits: { requests_per_minute: 3 },
      requests_this_minute: 3,
    });
    expect(overview.counts.parked).to.be.at.least(1);
    // Parked: it has started (it keeps its user's slot) but holds no worker slot.
    expect(
      (await http<TurnView>(farm.url, "GET", `/v1/turns/${fourth.turn_id}`)).body.status,
    ).to.equal("running");

    // Cancelled while parked: it ends now, not when its job wakes after the model's minute.
    await http<TurnView>(farm.url, "POST", `/v1/turns/${fourth.turn_id}/cancel`);
    const ended = await waitForTurn(farm.url, fourth.turn_id, 5_000).catch((err: Error) => {
      throw new Error(`a parked turn must end promptly when cancelled: ${err.message}`);
    });
    expect(ended.status).to.equal("cancelled");
    const userId = (await allTurnEvents(farm.url, fourth.turn_id))[0]?.user_id ?? "";
    await waitUntil(
      "the parked turn's slot to be freed",
      async () => (await farm.redis.scard(farm.fairKey(`run:${userId}`))) === 0,
      2_000,
    );
  });

  it("a provider 429 holds the model for every turn; y runs through the hold", async () => {
    // A long call in flight on x-hold, so the admin view shows it during the hold.
    const inFlight = await submitOn(
      farm,
      "x-hold",
      "[[sim ttft_ms=900 token_delay_ms=30 reply_tokens=100]] long",
    );
    await waitForEvents(farm.url, inFlight.turn_id, (evs) => evs.some(isCall));

    const limited = await submitOn(
      farm,
      "x-hold",
      "[[sim fault=429 fault_times=1 retry_after_s=2]] hi",
    );
    const parked = await waitForEvents(farm.url, limited.turn_id, (evs) => evs.some(isPark));
    const firstCall = parked.find(isCall);
    const retry = parked.find((e) => e.type === "llm_stream_retry");
    expect(retry?.data).to.include({ reason: "rate_limited", will_retry: true, delay_ms: 2_000 });
    expect(parked.find(isPark)?.data).to.include({ model: "x-hold", reason: "cooldown" });
    // The hold began after the 429'd call started, so it lasts at least until then + 2 s.
    const holdEndsNoEarlierThan = (firstCall?.ts ?? 0) + 2_000;

    // During the hold: another x-hold turn and a y turn arrive; the admin view shows the hold.
    const second = await submitOn(farm, "x-hold", "second turn during the hold");
    const other = await submitOn(farm, "y", "y turn during the hold");
    const overview = await adminQueues(farm.url);
    const row = modelRow(overview, "x-hold");
    expect(row?.limits).to.deep.equal({ max_concurrency: 3, requests_per_minute: 100 });
    expect(row?.in_flight, "the long call in flight").to.equal(1);
    expect(row?.cooldown_remaining_ms).to.be.greaterThan(0).and.at.most(2_000);
    expect(modelRow(overview, "y"), "y has no limits and no hold").to.equal(undefined);

    const otherEnded = await waitForTurn(farm.url, other.turn_id);
    expect(otherEnded.status).to.equal("completed");
    const otherEvents = await allTurnEvents(farm.url, other.turn_id);
    expect(otherEvents.some(isPark), "y never waits for x-hold").to.equal(false);
    const otherDone = otherEvents.find((e) => e.type === "turn_terminal")?.ts ?? Infinity;
    expect(otherDone, "y done before the hold ends").to.be.below(holdEndsNoEarlierThan);

    const [limitedEnded, secondEnded, inFlightEnded] = await Promise.all([
      waitForTurn(farm.url, limited.turn_id, 20_000),
      waitForTurn(farm.url, second.turn_id, 20_000),
      waitForTurn(farm.url, inFlight.turn_id, 20_000),
    ]);
    expect(limitedEnded.status, "the 429'd turn").to.equal("completed");
    expect(secondEnded.status, "the turn that arrived during the hold").to.equal("completed");
    expect(inFlightEnded.status).to.equal("completed");

    // Both x-hold turns called the model again only after the hold.
    const limitedCalls = (await allTurnEvents(farm.url, limited.turn_id)).filter(isCall);
    expect(limitedCalls).to.have.length(2);
    expect(limitedCalls[1]?.ts).to.be.at.least(holdEndsNoEarlierThan);
    const secondEvents = await allTurnEvents(farm.url, second.turn_id);
    expect(secondEvents.find(isPark)?.data).to.include({ model: "x-hold", reason: "cooldown" });
    const secondCalls = secondEvents.filter(isCall);
    expect(secondCalls).to.have.length(1);
    expect(secondCalls[0]?.ts).to.be.at.least(holdEndsNoEarlierThan);
    expect(
      secondEvents.some((e) => e.type === "llm_stream_retry"),
      "no 429 of its own",
    ).to.equal(false);
  });
});
