/**
 * Contract part: creating turns — sessions, ownership, and submit idempotency (replay, expiry,
 * purge, and two handles racing with the same key).
 */
import { expect } from "chai";
import type { OpenStore } from "./contract.js";
import { claim, newTurn, USER_A, USER_B } from "./fixtures.js";

export function describeTurnContract(open: OpenStore): void {
  describe("createTurn", () => {
    it("keeps the turn's kind (agent when not given) and its trace", async () => {
      const store = await open();
      const compaction = newTurn({
        sessionId: "s-kind",
        kind: "compaction",
        input: "",
        traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        traceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      });
      await store.createTurn(compaction, null);
      const agent = newTurn({ sessionId: "s-kind" });
      await store.createTurn(agent, null);
      expect((await store.getTurn(compaction.id))?.kind).to.equal("compaction");
      expect((await store.getTurn(compaction.id))?.input).to.equal("");
      expect((await store.getTurn(compaction.id))?.traceId).to.equal(
        "4bf92f3577b34da6a3ce929d0e0e4736",
      );
      expect((await store.getTurn(compaction.id))?.traceParent).to.equal(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      );
      expect((await store.getTurn(agent.id))?.traceId).to.equal(null);
      expect((await store.getTurn(agent.id))?.traceParent).to.equal(null);
      expect((await store.getTurn(agent.id))?.kind).to.equal("agent");
    });

    it("creates the session and a queued turn", async () => {
      const store = await open();
      const turn = newTurn({ sessionId: "s-new", createdAt: 1_234 });
      const result = await store.createTurn(turn, null);

      expect(result).to.deep.equal({
        kind: "created",
        sessionCreated: true,
        turn: {
          ...turn,
          kind: "agent",
          traceId: null,
          traceParent: null,
          status: "queued",
          idempotencyKey: null,
          startedAt: null,
          finishedAt: null,
          attempt: 0,
          answer: null,
          stopReason: null,
          usage: null,
          error: null,
          firstSeq: 1,
          lastSeq: null,
        },
      });
      expect(await store.getSession("s-new")).to.deep.equal({
        id: "s-new",
        userId: USER_A,
        createdAt: 1_234,
        updatedAt: 1_234,
      });
      expect(await store.getTurn(turn.id)).to.deep.equal(
        result.kind === "created" ? result.turn : null,
      );
    });

    it("round-trips empty tools and null metadata", async () => {
      const store = await open();
      const turn = newTurn({ tools: [], metadata: null });
      await store.createTurn(turn, null);
      const stored = await store.getTurn(turn.id);
      expect(stored?.tools).to.deep.equal([]);
      expect(stored?.metadata).to.equal(null);
    });

    it("adds a turn to an existing session of the same user", async () => {
      const store = await open();
      await store.createTurn(newTurn({ createdAt: 1_000 }), null);
      const second = newTurn({ createdAt: 2_000 });
      const result = await store.createTurn(second, null);
      expect(result.kind).to.equal("created");
      expect(result.kind === "created" && result.sessionCreated).to.equal(false);
      // Only a turn that creates its session knows its first seq up front.
      expect((await store.getTurn(second.id))?.firstSeq).to.equal(null);
      expect((await store.getTurn(second.id))?.sessionId).to.equal(second.sessionId);
      expect((await store.getSession(second.sessionId))?.createdAt).to.equal(1_000);
    });

    it("refuses another user's session and writes nothing", async () => {
      const store = await open();
      await store.createTurn(newTurn({ userId: USER_A }), null);
      const intruder = newTurn({ userId: USER_B });
      expect(await store.createTurn(intruder, claim("k-intruder"))).to.deep.equal({
        kind: "session_forbidden",
      });
      expect(await store.getTurn(intruder.id)).to.equal(null);
      expect((await store.getSession(intruder.sessionId))?.userId).to.equal(USER_A);
      // The refused request did not consume its key.
      const own = newTurn({ userId: USER_B, sessionId: "s-of-b" });
      expect((await store.createTurn(own, claim("k-intruder"))).kind).to.equal("created");
    });

    it("returns null for unknown sessions and turns", async () => {
      const store = await open();
      expect(await store.getSession("nope")).to.equal(null);
      expect(await store.getTurn("nope")).to.equal(null);
    });

    it("records the first seq of a turn", async () => {
      const store = await open();
      const turn = newTurn();
      await store.createTurn(turn, null);
      await store.setTurnFirstSeq(turn.id, 17);
      expect((await store.getTurn(turn.id))?.firstSeq).to.equal(17);
    });
  });

  describe("idempotent createTurn", () => {
    it("replays the same turn and stored hash for a reused key", async () => {
      const store = await open();
      const original = newTurn();
      const created = await store.createTurn(original, claim("k1", { requestHash: "h1" }));
      expect(created.kind).to.equal("created");
      expect(created.kind === "created" && created.turn.idempotencyKey).to.equal("k1");

      const retry = newTurn();
      const replayed = await store.createTurn(retry, claim("k1", { requestHash: "h1" }));
      expect(replayed).to.deep.equal({
        kind: "replayed",
        turn: await store.getTurn(original.id),
        requestHash: "h1",
      });
      expect(await store.getTurn(retry.id)).to.equal(null);
    });

    it("replays with the stored hash when the new request differs, so callers see the mismatch", async () => {
      const store = await open();
      const original = newTurn();
      await store.createTurn(original, claim("k1", { requestHash: "h1" }));
      const other = newTurn({ sessionId: "another-session", input: "different" });
      const result = await store.createTurn(other, claim("k1", { requestHash: "h2" }));
      expect(result.kind).to.equal("replayed");
      expect(result.kind === "replayed" && result.requestHash).to.equal("h1");
      expect(result.kind === "replayed" && result.turn.id).to.equal(original.id);
      expect(await store.getSession("another-session")).to.equal(null);
    });

    it("finds the turn of a live key without creating anything, and nothing once it expired", async () => {
      const store = await open();
      const original = newTurn({ createdAt: 1_000 });
      await store.createTurn(original, claim("k1", { requestHash: "h1", expiresAt: 5_000 }));
      const found = await store.findIdempotentTurn(original.userId, "k1", 4_999);
      expect(found?.turn.id).to.equal(original.id);
      expect(found?.requestHash).to.equal("h1");
      expect(await store.findIdempotentTurn(original.userId, "k1", 5_000)).to.equal(null);
      expect(await store.findIdempotentTurn(USER_B, "k1", 1_000)).to.equal(null);
      expect(await store.findIdempotentTurn(original.userId, "other", 1_000)).to.equal(null);
    });

    it("scopes keys per user", async () => {
      const store = await open();
      const ofA = await store.createTurn(newTurn({ userId: USER_A }), claim("k"));
      const ofB = await store.createTurn(newTurn({ userId: USER_B, sessionId: "s-b" }), claim("k"));
      expect([ofA.kind, ofB.kind]).to.deep.equal(["created", "created"]);
    });

    it("treats an expired key as unused and then replays the new turn", async () => {
      const store = await open();
      await store.createTurn(newTurn({ createdAt: 1_000 }), claim("k", { expiresAt: 2_000 }));
      const fresh = newTurn({ createdAt: 2_000 });
      const result = await store.createTurn(
        fresh,
        claim("k", { expiresAt: 9_000, requestHash: "h2" }),
      );
      expect(result.kind).to.equal("created");
      expect(result.kind === "created" && result.turn.id).to.equal(fresh.id);

      const again = await store.createTurn(newTurn({ createdAt: 3_000 }), claim("k"));
      expect(again.kind === "replayed" && again.turn.id).to.equal(fresh.id);
      expect(again.kind === "replayed" && again.requestHash).to.equal("h2");
    });

    it("yields exactly one turn when two handles race with the same key", async () => {
      const [first, second] = [await open(), await open()];
      const [turnA, turnB] = [newTurn(), newTurn()];
      const results = await Promise.all([
        first.createTurn(turnA, claim("race")),
        second.createTurn(turnB, claim("race")),
      ]);

      const created = results.filter((r) => r.kind === "created");
      const replayed = results.filter((r) => r.kind === "replayed");
      expect(created).to.have.length(1);
      expect(replayed).to.have.length(1);
      const winner = created[0]?.turn.id;
      expect(replayed[0]?.turn.id).to.equal(winner);
      const stored = [await first.getTurn(turnA.id), await first.getTurn(turnB.id)];
      expect(stored.filter((t) => t !== null).map((t) => t?.id)).to.deep.equal([winner]);
    });

    it("purges expired records (expiresAt <= now) and frees their keys", async () => {
      const store = await open();
      await store.createTurn(newTurn({ sessionId: "s1" }), claim("k100", { expiresAt: 100_000 }));
      await store.createTurn(newTurn({ sessionId: "s2" }), claim("k200", { expiresAt: 200_000 }));
      const kept = newTurn({ sessionId: "s3" });
      await store.createTurn(kept, claim("k300", { expiresAt: 300_000 }));

      expect(await store.purgeExpiredIdempotency(200_000)).to.equal(2);
      expect(await store.purgeExpiredIdempotency(200_000)).to.equal(0);

      const reuse = await store.createTurn(
        newTurn({ sessionId: "s1", createdAt: 150 }),
        claim("k100"),
      );
      expect(reuse.kind).to.equal("created");
      const live = await store.createTurn(
        newTurn({ sessionId: "s3", createdAt: 250 }),
        claim("k300"),
      );
      expect(live.kind === "replayed" && live.turn.id).to.equal(kept.id);
    });
  });
}
