/**
 * Contract part: session snapshots and context loading, artifacts, approvals and the audit log.
 */
import { createHash } from "node:crypto";
import { expect } from "chai";
import type { ContextMessage } from "../../src/context/message.js";
import { ArtifactTooLargeError } from "../../src/store/errors.js";
import {
  ARTIFACT_MAX_BYTES,
  type NewApproval,
  type NewArtifact,
  type Store,
} from "../../src/store/port.js";
import type { OpenStore } from "./contract.js";
import { completed, newTurn, SAMPLE_HISTORY } from "./fixtures.js";

/** A session with `turns` finished turns, each appending SAMPLE_HISTORY (4 items). */
async function sessionWithHistory(store: Store, sessionId: string, turns: number): Promise<void> {
  for (let i = 0; i < turns; i++) {
    const turn = newTurn({ sessionId });
    await store.createTurn(turn, null);
    await store.finishTurn(turn.id, completed(), SAMPLE_HISTORY);
  }
}

const SUMMARY: ContextMessage = { role: "user", content: "[Context Summary] two files listed" };

function artifact(overrides: Partial<NewArtifact> = {}): NewArtifact {
  return {
    id: "art-1",
    sessionId: "session-art",
    turnId: "turn-1",
    userId: "user-a",
    kind: "tool_output",
    name: "run_command.out",
    contentType: "text/plain",
    createdAt: 1_000,
    ...overrides,
  };
}

function approval(overrides: Partial<NewApproval> = {}): NewApproval {
  return {
    id: "appr-1",
    turnId: "turn-1",
    sessionId: "session-1",
    userId: "user-a",
    toolName: "execute_command",
    toolCallId: "call-1",
    arguments: '{"command":"rm -rf build"}',
    reason: "rule: rm needs approval",
    requestedAt: 1_000,
    expiresAt: 61_000,
    ...overrides,
  };
}

export function describeRecordContract(open: OpenStore): void {
  describe("snapshots", () => {
    it("loads the whole history when there is no snapshot", async () => {
      const store = await open();
      await sessionWithHistory(store, "s-snap", 2);
      const context = await store.loadContext("s-snap");
      expect(context).to.deep.equal({
        messages: [...SAMPLE_HISTORY, ...SAMPLE_HISTORY],
        historyLength: 8,
        snapshot: null,
      });
      expect(await store.loadContext("unknown")).to.deep.equal({
        messages: [],
        historyLength: 0,
        snapshot: null,
      });
    });

    it("loads the latest snapshot plus only the items after it", async () => {
      const store = await open();
      await sessionWithHistory(store, "s-snap", 2);
      const saved = await store.saveSnapshot({
        sessionId: "s-snap",
        historyLength: 8,
        seq: 40,
        reason: "compaction",
        messages: [SUMMARY],
        createdAt: 9_000,
      });
      expect(saved).to.equal(true);
      await sessionWithHistory(store, "s-snap", 1);

      const context = await store.loadContext("s-snap");
      expect(context.messages).to.deep.equal([SUMMARY, ...SAMPLE_HISTORY]);
      expect(context.historyLength).to.equal(12);
      expect(context.snapshot).to.deep.equal({
        historyLength: 8,
        seq: 40,
        reason: "compaction",
        createdAt: 9_000,
      });
      // The full history is still there for whoever needs it.
      expect(await store.loadHistory("s-snap")).to.have.length(12);
      expect((await store.latestSnapshot("s-snap"))?.messages).to.deep.equal([SUMMARY]);
    });

    it("refuses a snapshot that does not cover exactly the current history", async () => {
      const store = await open();
      await sessionWithHistory(store, "s-snap", 1);
      const base = { sessionId: "s-snap", seq: 9, reason: "interval" as const, createdAt: 1 };
      expect(await store.saveSnapshot({ ...base, historyLength: 3, messages: [] })).to.equal(false);
      expect(await store.saveSnapshot({ ...base, historyLength: 5, messages: [] })).to.equal(false);
      expect(await store.latestSnapshot("s-snap")).to.equal(null);
      expect(
        await store.saveSnapshot({ ...base, historyLength: 4, messages: SAMPLE_HISTORY }),
      ).to.equal(true);
      // The same point saved again keeps the first.
      expect(await store.saveSnapshot({ ...base, historyLength: 4, messages: [SUMMARY] })).to.equal(
        true,
      );
      expect((await store.latestSnapshot("s-snap"))?.messages).to.deep.equal(SAMPLE_HISTORY);
    });

    it("lets a compaction snapshot replace the one saved at the same point", async () => {
      const store = await open();
      await sessionWithHistory(store, "s-snap", 1);
      const base = { sessionId: "s-snap", historyLength: 4, createdAt: 1 };
      await store.saveSnapshot({ ...base, seq: 9, reason: "interval", messages: SAMPLE_HISTORY });
      const compacted = { ...base, seq: 12, reason: "compaction" as const, messages: [SUMMARY] };
      expect(await store.saveSnapshot(compacted)).to.equal(true);
      expect(await store.latestSnapshot("s-snap")).to.deep.equal(compacted);
      // An interval snapshot at that point never undoes it; another compaction does.
      await store.saveSnapshot({ ...base, seq: 13, reason: "interval", messages: SAMPLE_HISTORY });
      expect((await store.latestSnapshot("s-snap"))?.messages).to.deep.equal([SUMMARY]);
      const again = { ...compacted, seq: 14, messages: [SUMMARY, SUMMARY] };
      await store.saveSnapshot(again);
      expect(await store.loadContext("s-snap")).to.deep.include({ messages: again.messages });
    });
  });

  describe("artifacts", () => {
    it("stores content by id with a computed size and sha256, immutably", async () => {
      const store = await open();
      const content = Buffer.from("line 1\nline 2\n".repeat(1_000));
      const record = await store.putArtifact(artifact(), content);
      expect(record).to.deep.equal({
        ...artifact(),
        sizeBytes: content.byteLength,
        sha256: createHash("sha256").update(content).digest("hex"),
      });
      const again = await store.putArtifact(artifact({ name: "other" }), Buffer.from("x"));
      expect(again).to.deep.equal(record);
      const read = await store.getArtifact("art-1");
      expect(read?.record).to.deep.equal(record);
      expect(read?.content.equals(content)).to.equal(true);
      expect(await store.getArtifact("nope")).to.equal(null);
    });

    it("lists a session's artifacts oldest first and refuses oversized content", async () => {
      const store = await open();
      await store.putArtifact(artifact({ id: "b", createdAt: 2 }), Buffer.from("b"));
      await store.putArtifact(artifact({ id: "a", createdAt: 1 }), Buffer.from("a"));
      await store.putArtifact(artifact({ id: "c", sessionId: "other" }), Buffer.from("c"));
      expect((await store.listArtifacts("session-art")).map((a) => a.id)).to.deep.equal(["a", "b"]);
      const error = await store
        .putArtifact(artifact({ id: "big" }), Buffer.alloc(ARTIFACT_MAX_BYTES + 1))
        .then(
          () => null,
          (err: unknown) => err,
        );
      expect(error).to.be.instanceOf(ArtifactTooLargeError);
      expect(await store.getArtifact("big")).to.equal(null);
    });
  });

  describe("approvals", () => {
    it("creates idempotently and decides exactly once", async () => {
      const [a, b] = [await open(), await open()];
      const created = await a.createApproval(approval());
      expect(created).to.deep.equal({
        ...approval(),
        status: "pending",
        decidedAt: null,
        decidedBy: null,
        note: null,
      });
      expect(await b.createApproval(approval({ reason: "other" }))).to.deep.equal(created);

      const decisions = await Promise.all([
        a.decideApproval("appr-1", {
          status: "approved",
          decidedAt: 2,
          decidedBy: "alice",
          note: null,
        }),
        b.decideApproval("appr-1", {
          status: "denied",
          decidedAt: 3,
          decidedBy: "bob",
          note: "no",
        }),
      ]);
      expect(decisions.filter((d) => d?.changed)).to.have.length(1);
      const standing = (await a.getApproval("appr-1")) ?? created;
      for (const d of decisions) expect(d?.approval).to.deep.equal(standing);
      expect(standing.status).to.be.oneOf(["approved", "denied"]);
      expect(
        await a.decideApproval("nope", {
          status: "expired",
          decidedAt: 4,
          decidedBy: "x",
          note: null,
        }),
      ).to.equal(null);
    });

    it("lists a turn's approvals in request order", async () => {
      const store = await open();
      await store.createApproval(approval({ id: "late", requestedAt: 5 }));
      await store.createApproval(approval({ id: "early", requestedAt: 1 }));
      await store.createApproval(approval({ id: "elsewhere", turnId: "turn-2" }));
      expect((await store.listTurnApprovals("turn-1")).map((a) => a.id)).to.deep.equal([
        "early",
        "late",
      ]);
    });
  });

  describe("audit log", () => {
    it("appends entries and pages them in append order, by subject or all", async () => {
      const store = await open();
      const entries = [];
      for (let i = 0; i < 5; i++) {
        entries.push(
          await store.appendAudit({
            ts: 1_000 + i,
            actor: "admin",
            action: i % 2 === 0 ? "bucket.archive" : "bucket.restore",
            subjectType: "bucket",
            subjectId: i < 3 ? "20260105" : "20260106",
            details: i === 0 ? { events: 10 } : null,
          }),
        );
      }
      const ids = entries.map((e) => e.id);
      expect([...ids].sort()).to.deep.equal(ids);
      expect(await store.listAudit({ limit: 10 })).to.deep.equal(entries);
      expect(await store.listAudit({ limit: 2, afterId: ids[1] })).to.deep.equal(
        entries.slice(2, 4),
      );
      expect(
        (await store.listAudit({ subjectId: "20260106", limit: 10 })).map((e) => e.id),
      ).to.deep.equal(ids.slice(3));
      expect(entries[0]?.details).to.deep.equal({ events: 10 });
    });
  });
}
