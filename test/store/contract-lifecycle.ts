/**
 * Contract part: a turn's life after creation — starting (attempts), ending exactly once with its
 * history, the session history that results, and the reconciler's stale-turn listing.
 */
import { expect } from "chai";
import type { Store } from "../../src/store/port.js";
import type { OpenStore } from "./contract.js";
import { completed, newTurn, SAMPLE_HISTORY, storedEvent } from "./fixtures.js";

async function createdTurnId(store: Store, overrides: Parameters<typeof newTurn>[0] = {}) {
  const turn = newTurn(overrides);
  const result = await store.createTurn(turn, null);
  expect(result.kind).to.equal("created");
  return turn.id;
}

export function describeTurnLifecycleContract(open: OpenStore): void {
  describe("turn status transitions", () => {
    it("markTurnRunning counts attempts and keeps the first startedAt", async () => {
      const store = await open();
      const id = await createdTurnId(store);

      const first = await store.markTurnRunning(id, 2_000);
      expect(first).to.include({ status: "running", attempt: 1, startedAt: 2_000 });
      const second = await store.markTurnRunning(id, 3_000);
      expect(second).to.include({ status: "running", attempt: 2, startedAt: 2_000 });
      expect(await store.getTurn(id)).to.deep.equal(second);
    });

    it("markTurnRunning returns null for unknown and terminal turns and changes nothing", async () => {
      const store = await open();
      expect(await store.markTurnRunning("nope", 2_000)).to.equal(null);

      const id = await createdTurnId(store);
      await store.markTurnRunning(id, 2_000);
      await store.finishTurn(id, completed(), []);
      const before = await store.getTurn(id);
      expect(await store.markTurnRunning(id, 9_000)).to.equal(null);
      expect(await store.getTurn(id)).to.deep.equal(before);
    });

    it("finishTurn ends a turn once; a second call returns false and writes nothing", async () => {
      const store = await open();
      const id = await createdTurnId(store);
      await store.markTurnRunning(id, 2_000);

      const outcome = completed({ finishedAt: 6_000 });
      expect(await store.finishTurn(id, outcome, SAMPLE_HISTORY)).to.equal(true);
      const ended = await store.getTurn(id);
      expect(ended).to.deep.include({
        status: "completed",
        finishedAt: 6_000,
        answer: outcome.answer,
        stopReason: outcome.stopReason,
        usage: outcome.usage,
        error: null,
        lastSeq: null,
        attempt: 1,
        startedAt: 2_000,
      });

      const late = { ...outcome, status: "failed" as const, finishedAt: 7_000, answer: null };
      expect(await store.finishTurn(id, late, SAMPLE_HISTORY)).to.equal(false);
      expect(await store.getTurn(id)).to.deep.equal(ended);
      const sessionId = ended?.sessionId ?? "";
      expect(await store.loadHistory(sessionId)).to.deep.equal(SAMPLE_HISTORY);
    });

    it("finishTurn ends a queued turn (cancelled before start) and keeps its error", async () => {
      const store = await open();
      const id = await createdTurnId(store);
      const error = { code: "cancelled", message: "cancelled by user", retryable: false };
      const outcome = completed({ status: "cancelled", answer: null, usage: null, error });
      expect(await store.finishTurn(id, outcome, [])).to.equal(true);
      expect(await store.getTurn(id)).to.deep.include({
        status: "cancelled",
        error,
        usage: null,
        startedAt: null,
      });
    });

    it("records the turn's last seq when its turn_terminal event is stored, once", async () => {
      const store = await open();
      const id = await createdTurnId(store, { sessionId: "s-last" });
      await store.finishTurn(id, completed(), []);
      expect((await store.getTurn(id))?.lastSeq).to.equal(null);
      const terminal = { ...storedEvent("s-last", 21, id), type: "turn_terminal" };
      await store.appendEvents([storedEvent("s-last", 20, id), terminal]);
      expect(await store.getTurn(id)).to.include({ status: "completed", lastSeq: 21 });
      await store.appendEvents([{ ...terminal, seq: 22 }]);
      expect((await store.getTurn(id))?.lastSeq).to.equal(21);
    });

    it("finishTurn on an unknown turn returns false", async () => {
      const store = await open();
      expect(await store.finishTurn("nope", completed(), SAMPLE_HISTORY)).to.equal(false);
    });
  });

  describe("session history", () => {
    it("round-trips the items of successive turns in order, per session", async () => {
      const store = await open();
      const first = await createdTurnId(store, { sessionId: "s-h", createdAt: 1_000 });
      const second = await createdTurnId(store, { sessionId: "s-h", createdAt: 2_000 });
      const elsewhere = await createdTurnId(store, { sessionId: "s-other", createdAt: 2_500 });
      const followUp = [
        { role: "user" as const, content: "and now?" },
        { role: "assistant" as const, content: "Now we are done." },
      ];

      expect(await store.loadHistory("s-h")).to.deep.equal([]);
      await store.finishTurn(first, completed({ finishedAt: 3_000 }), SAMPLE_HISTORY);
      await store.finishTurn(elsewhere, completed({ finishedAt: 3_500 }), [
        { role: "user", content: "unrelated" },
      ]);
      await store.finishTurn(second, completed({ finishedAt: 4_000 }), followUp);

      expect(await store.loadHistory("s-h")).to.deep.equal([...SAMPLE_HISTORY, ...followUp]);
      expect(await store.loadHistory("s-other")).to.deep.equal([
        { role: "user", content: "unrelated" },
      ]);
      expect(await store.loadHistory("unknown")).to.deep.equal([]);
      expect((await store.getSession("s-h"))?.updatedAt).to.equal(4_000);
    });
  });

  describe("listSessionTurns", () => {
    it("lists the session's turns newest first, up to the limit", async () => {
      const store = await open();
      const older = await createdTurnId(store, { sessionId: "s-list", createdAt: 100 });
      const newer = await createdTurnId(store, { sessionId: "s-list", createdAt: 200 });
      await createdTurnId(store, { sessionId: "s-elsewhere", createdAt: 300 });

      const ids = async (limit: number) =>
        (await store.listSessionTurns("s-list", limit)).map((t) => t.id);
      expect(await ids(10)).to.deep.equal([newer, older]);
      expect(await ids(1)).to.deep.equal([newer]);
      expect(await store.listSessionTurns("unknown", 10)).to.deep.equal([]);
    });
  });

  describe("sessionUsage", () => {
    it("sums the usage of the session's ended turns, skipping turns without usage", async () => {
      const store = await open();
      const a = await createdTurnId(store, { sessionId: "s-usage", createdAt: 100 });
      const b = await createdTurnId(store, { sessionId: "s-usage", createdAt: 200 });
      const cancelled = await createdTurnId(store, { sessionId: "s-usage", createdAt: 300 });
      await createdTurnId(store, { sessionId: "s-usage", createdAt: 400 }); // still queued
      const other = await createdTurnId(store, { sessionId: "s-usage-other", createdAt: 500 });
      await store.finishTurn(a, completed(), []);
      const bigger = {
        input_tokens: 100,
        output_tokens: 40,
        total_tokens: 140,
        context_tokens: 90,
        model_calls: 3,
        compaction_tokens: 20,
      };
      await store.finishTurn(b, completed({ usage: bigger }), []);
      await store.finishTurn(cancelled, completed({ status: "cancelled", usage: null }), []);
      await store.finishTurn(other, completed(), []);

      expect(await store.sessionUsage("s-usage")).to.deep.equal({
        input_tokens: 110,
        output_tokens: 45,
        total_tokens: 155,
        turns: 2,
      });
      expect((await store.getTurn(b))?.usage).to.deep.equal(bigger);
      expect(await store.sessionUsage("unknown")).to.deep.equal({
        input_tokens: 0,
        output_tokens: 0,
        total_tokens: 0,
        turns: 0,
      });
    });
  });

  describe("listStaleTurns", () => {
    it("lists non-terminal turns created strictly before the cutoff, oldest first", async () => {
      const store = await open();
      const queued = await createdTurnId(store, { sessionId: "s1", createdAt: 100 });
      const running = await createdTurnId(store, { sessionId: "s2", createdAt: 200 });
      const done = await createdTurnId(store, { sessionId: "s3", createdAt: 150 });
      await createdTurnId(store, { sessionId: "s4", createdAt: 400 });
      await store.markTurnRunning(running, 250);
      await store.finishTurn(done, completed({ finishedAt: 300 }), []);

      const ids = async (before: number, limit: number) =>
        (await store.listStaleTurns(before, limit)).map((t) => t.id);
      expect(await ids(400, 10)).to.deep.equal([queued, running]);
      expect(await ids(10_000, 1)).to.deep.equal([queued]);
      expect(await ids(100, 10)).to.deep.equal([]);
      const [stale] = await store.listStaleTurns(400, 10);
      expect(stale).to.deep.equal(await store.getTurn(queued));
    });
  });
}
