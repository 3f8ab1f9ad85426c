import { expect } from "chai";
import { type ContextMessage, ContextMessageSchema } from "../../src/context/message.js";
import {
  isExchangeStart,
  isNormalized,
  isSummary,
  MISSING_RESULT_CONTENT,
  normalizeHistory,
  removeFirstItem,
  removeItemAt,
  removeLastItem,
  removeOldestExchange,
  splitExchanges,
} from "../../src/context/normalize.js";

const user = (content: string): ContextMessage => ({ role: "user", content });
const summary = (content: string): ContextMessage => ({ role: "user", content, summary: true });
const say = (content: string): ContextMessage => ({ role: "assistant", content });
const calls = (...ids: string[]): ContextMessage => ({
  role: "assistant",
  content: "",
  tool_calls: ids.map((id) => ({ id, name: "echo", arguments: `{"id":"${id}"}` })),
});
const result = (id: string, content = `out ${id}`): ContextMessage => ({
  role: "tool",
  tool_call_id: id,
  content,
});
const missing = (id: string): ContextMessage => ({
  role: "tool",
  tool_call_id: id,
  content: MISSING_RESULT_CONTENT,
});

describe("context message", () => {
  it("keeps the summary marker optional: stored items without it still parse", () => {
    expect(ContextMessageSchema.parse({ role: "user", content: "hi" })).to.deep.equal(user("hi"));
    expect(ContextMessageSchema.parse({ role: "user", content: "s", summary: true })).to.deep.equal(
      summary("s"),
    );
    expect(() => ContextMessageSchema.parse({ role: "user", content: "s", summary: false })).to
      .throw;
  });
});

describe("normalizeHistory", () => {
  it("leaves a well-formed history as it is, keeping every message object", () => {
    const items = [user("q"), calls("a", "b"), result("a"), result("b"), say("done")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.have.length(items.length);
    for (const [i, m] of out.entries()) expect(m).to.equal(items[i]);
    expect(report).to.deep.equal({ inserted: [], dropped: [], moved: [] });
    expect(isNormalized(items)).to.equal(true);
  });

  it("inserts the missing results of calls at the end of the history", () => {
    const items = [user("q"), calls("a", "b")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([user("q"), calls("a", "b"), missing("a"), missing("b")]);
    expect(report.inserted).to.deep.equal(["a", "b"]);
    expect(JSON.parse(MISSING_RESULT_CONTENT)).to.deep.equal({
      ok: false,
      data: null,
      error: "missing tool result (aborted)",
    });
    expect(isNormalized(out)).to.equal(true);
  });

  it("inserts a missing result after the existing results of its message", () => {
    const items = [user("q"), calls("a", "b", "c"), result("b"), say("next"), user("again")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([
      user("q"),
      calls("a", "b", "c"),
      result("b"),
      missing("a"),
      missing("c"),
      say("next"),
      user("again"),
    ]);
    expect(report.inserted).to.deep.equal(["a", "c"]);
  });

  it("drops duplicate results, keeping the first", () => {
    const items = [calls("a"), result("a", "first"), result("a", "second"), say("x")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([calls("a"), result("a", "first"), say("x")]);
    expect(report.dropped).to.deep.equal(["a"]);
  });

  it("drops orphan results, and a result placed before its call", () => {
    const items = [user("q"), result("ghost"), result("a", "early"), calls("a"), say("x")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([user("q"), calls("a"), missing("a"), say("x")]);
    expect(report.dropped).to.deep.equal(["ghost", "a"]);
    expect(report.inserted).to.deep.equal(["a"]);
  });

  it("moves a result that sits further down up next to its call", () => {
    const items = [user("q"), calls("a", "b"), result("a"), user("meanwhile"), result("b")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([
      user("q"),
      calls("a", "b"),
      result("a"),
      result("b"),
      user("meanwhile"),
    ]);
    expect(report.moved).to.deep.equal(["b"]);
    expect(report.inserted).to.deep.equal([]);
  });

  it("matches results of back-to-back call messages to their own message", () => {
    const items = [calls("a"), calls("b"), result("b"), result("a")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([calls("a"), result("a"), calls("b"), result("b")]);
    expect(report.moved).to.deep.equal(["a"]);
  });

  it("handles many rounds of parallel calls", () => {
    const items = [
      user("q"),
      calls("a1", "a2"),
      result("a2"),
      result("a1"),
      calls("b1", "b2", "b3"),
      result("b3"),
      say("done"),
    ];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([
      user("q"),
      calls("a1", "a2"),
      result("a2"),
      result("a1"),
      calls("b1", "b2", "b3"),
      result("b3"),
      missing("b1"),
      missing("b2"),
      say("done"),
    ]);
    expect(report).to.deep.equal({ inserted: ["b1", "b2"], dropped: [], moved: [] });
  });

  it("gives a call id reused by a later message its own result", () => {
    const items = [calls("x"), result("x", "one"), calls("x"), result("x", "two"), result("x")];
    const { items: out, report } = normalizeHistory(items);
    expect(out).to.deep.equal([calls("x"), result("x", "one"), calls("x"), result("x", "two")]);
    expect(report.dropped).to.deep.equal(["x"]);
  });

  it("answers an assistant message without calls with nothing, and drops results after it", () => {
    const items = [say("hi"), result("a")];
    expect(normalizeHistory(items).items).to.deep.equal([say("hi")]);
    expect(normalizeHistory([]).items).to.deep.equal([]);
    expect(
      normalizeHistory([{ role: "assistant", content: "", tool_calls: [] }]).items,
    ).to.have.length(1);
  });

  it("is idempotent", () => {
    const items = [result("o"), user("q"), calls("a", "b"), user("u"), result("b"), result("b")];
    const once = normalizeHistory(items).items;
    const twice = normalizeHistory(once);
    expect(twice.items).to.deep.equal(once);
    expect(twice.report).to.deep.equal({ inserted: [], dropped: [], moved: [] });
  });
});

describe("splitExchanges", () => {
  it("starts an exchange at every user message, a compaction summary included", () => {
    const items = [
      summary("[Context Summary] ..."),
      user("q1"),
      calls("a"),
      result("a"),
      say("a1"),
      user("q2"),
      say("a2"),
    ];
    expect(isSummary(items[0] as ContextMessage)).to.equal(true);
    expect(isExchangeStart(items[0] as ContextMessage)).to.equal(true);
    expect(splitExchanges(items)).to.deep.equal([
      [summary("[Context Summary] ...")],
      [user("q1"), calls("a"), result("a"), say("a1")],
      [user("q2"), say("a2")],
    ]);
  });

  it("puts messages before the first user message in a leading group", () => {
    const items = [
      { role: "system", content: "sys" } as ContextMessage,
      say("left over"),
      user("q"),
    ];
    expect(splitExchanges(items)).to.deep.equal([
      [{ role: "system", content: "sys" }, say("left over")],
      [user("q")],
    ]);
    expect(splitExchanges([])).to.deep.equal([]);
  });

  it("gives back the history when concatenated", () => {
    const items = [say("x"), user("a"), calls("c"), result("c"), user("b")];
    expect(splitExchanges(items).flat()).to.deep.equal(items);
  });
});

describe("pair-aware removal", () => {
  it("removes an assistant message with its results", () => {
    const items = [calls("a", "b"), result("a"), result("b"), say("x")];
    const { items: kept, removed } = removeFirstItem(items);
    expect(kept).to.deep.equal([say("x")]);
    expect(removed).to.deep.equal([calls("a", "b"), result("a"), result("b")]);
  });

  it("removes a result with its call message and that message's other results", () => {
    const items = [user("q"), calls("a", "b"), result("a"), result("b"), say("x")];
    const { items: kept, removed } = removeItemAt(items, 3);
    expect(kept).to.deep.equal([user("q"), say("x")]);
    expect(removed).to.deep.equal([calls("a", "b"), result("a"), result("b")]);
    expect(removeLastItem([user("q"), calls("a"), result("a")]).items).to.deep.equal([user("q")]);
  });

  it("removes an orphan result or a plain message alone", () => {
    expect(removeFirstItem([result("o"), user("q")]).items).to.deep.equal([user("q")]);
    expect(removeFirstItem([user("q"), say("x")]).items).to.deep.equal([say("x")]);
    expect(removeFirstItem([])).to.deep.equal({ items: [], removed: [] });
    expect(removeItemAt([user("q")], 5).removed).to.deep.equal([]);
  });

  it("tells apart results of a call id that two messages declare", () => {
    const items = [calls("x"), result("x", "one"), calls("x"), result("x", "two")];
    expect(removeFirstItem(items).items).to.deep.equal([calls("x"), result("x", "two")]);
    expect(removeLastItem(items).items).to.deep.equal([calls("x"), result("x", "one")]);
  });

  it("removes a duplicate result alone, and a moved-down result with its call", () => {
    const dup = [calls("a"), result("a", "first"), result("a", "again")];
    expect(removeLastItem(dup).items).to.deep.equal([calls("a"), result("a", "first")]);
    const late = [user("q"), calls("a"), user("u"), result("a")];
    expect(removeLastItem(late).items).to.deep.equal([user("q"), user("u")]);
  });

  it("removes the oldest exchange, leaving system messages and no dangling results", () => {
    const sys: ContextMessage = { role: "system", content: "sys" };
    const items = [sys, user("q1"), calls("a"), user("q2"), result("a"), say("x")];
    const first = removeOldestExchange(items);
    // The leading group holds only the system message: the first removable exchange is q1's.
    expect(first.items).to.deep.equal([sys, user("q2"), say("x")]);
    expect(first.removed).to.deep.equal([user("q1"), calls("a"), result("a")]);
    const second = removeOldestExchange(first.items);
    expect(second.items).to.deep.equal([sys]);
    const third = removeOldestExchange(second.items);
    expect(third.removed).to.deep.equal([]);
    expect(third.items).to.deep.equal([sys]);
  });

  it("removes a summary as an exchange of its own", () => {
    const items = [summary("s"), user("q"), say("a")];
    expect(removeOldestExchange(items).items).to.deep.equal([user("q"), say("a")]);
  });
});
