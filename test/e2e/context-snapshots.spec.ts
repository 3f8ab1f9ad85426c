/**
 * Context snapshots through real turns: with SNAPSHOT_EVERY_EVENTS low, finishing turns saves
 * snapshots of the session's context; later turns load from the snapshot and the context they
 * load is exactly the session's history.
 */
import { expect } from "chai";
import { submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

describe("e2e: context snapshots", function () {
  this.timeout(60_000);
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start({ workers: 1, env: { SNAPSHOT_EVERY_EVENTS: "5" } });
  });
  after(async () => {
    await farm?.stop();
  });

  it("saves snapshots as turns end and loads the same context from them", async () => {
    const base = farm.api.url;
    const store = farm.api.context.store;
    const first = await submit(base, { input: "first", user_id: "snap-user" });
    await waitForTurn(base, first.turn_id);
    const session = first.session_id;
    const snapshot = await store.latestSnapshot(session);
    expect(snapshot, "a snapshot after the first turn").to.not.equal(null);
    // The session's system prompt, the input, the answer.
    expect(snapshot).to.include({ reason: "interval", historyLength: 3 });
    expect(snapshot?.seq).to.be.at.least(5);

    for (const input of ["second", "third"]) {
      const turn = await submit(base, { input, session_id: session, user_id: "snap-user" });
      const view = await waitForTurn(base, turn.turn_id);
      expect(view.status).to.equal("completed");
    }
    const context = await store.loadContext(session);
    expect(context.snapshot?.historyLength).to.equal(7);
    expect(context.messages).to.deep.equal(await store.loadHistory(session));
    expect(context.messages.filter((m) => m.role === "user").map((m) => m.content)).to.deep.equal([
      "first",
      "second",
      "third",
    ]);
  });
});
