/**
 * Compaction strategies on real token counts: summary (head + summary + recent + current),
 * trim (tool results capped, oldest exchanges dropped whole), minimal (the current input cut to
 * fit), the fallback when the summary call fails or returns nothing usable, and the invariant
 * that the result never exceeds the limit and stays a valid history.
 */
import { expect } from "chai";
import { contextBudget } from "../../src/context/budget.js";
import { type CompactionInput, compact } from "../../src/context/compaction/compactor.js";
import { SUMMARY_PREFIX } from "../../src/context/compaction/summary-prompt.js";
import type { ContextMessage } from "../../src/context/message.js";
import { isNormalized } from "../../src/context/normalize.js";
import { countPromptTokens, countTextTokens } from "../../src/context/token-count.js";

const budget = contextBudget({
  windowTokens: 8_192,
  reservedOutputTokens: 1_024,
  safetyMarginTokens: 512,
  triggerRatio: 0.9,
});

const words = (n: number, seed = "word") =>
  Array.from({ length: n }, (_, i) => `${seed}${i % 97}`).join(" ");

/** `n` exchanges: a question, a tool call, a large tool result, an answer. */
function history(n: number, resultWords = 400): ContextMessage[] {
  const items: ContextMessage[] = [{ role: "system", content: "You are a careful agent." }];
  for (let i = 0; i < n; i++) {
    const id = `call_${i}`;
    items.push(
      { role: "user", content: `question ${i}: ${words(20, "q")}` },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ id, name: "read_file", arguments: `{"path":"f${i}.txt"}` }],
      },
      { role: "tool", tool_call_id: id, content: words(resultWords, `r${i}_`) },
      { role: "assistant", content: `answer ${i}: ${words(30, "a")}` },
    );
  }
  return items;
}

function input(messages: ContextMessage[], over: Partial<CompactionInput> = {}): CompactionInput {
  return {
    messages,
    toolsTokens: 200,
    budget,
    settings: {
      keepHeadTokens: Math.floor(budget.limitTokens / 10),
      keepTailTokens: Math.floor(budget.limitTokens / 4),
      summaryMaxTokens: Math.floor(budget.limitTokens / 6),
      observationMinTokens: 128,
      goalRatio: 0.6,
    },
    count: { messages: (ms) => countPromptTokens(ms), text: countTextTokens },
    summarize: async () => "## Goal\nKeep reading files.\n## Next steps\nRead the next file.",
    ...over,
  };
}

function expectValid(result: { messages: ContextMessage[]; tokensAfter: number }) {
  expect(result.tokensAfter).to.be.at.most(budget.limitTokens);
  expect(countPromptTokens(result.messages) + 200).to.be.at.most(budget.limitTokens);
  expect(isNormalized(result.messages)).to.equal(true);
  expect(result.messages[0]).to.deep.equal({ role: "system", content: "You are a careful agent." });
}

describe("context: compaction", () => {
  it("summarises older exchanges, keeping the current one verbatim", async () => {
    const messages = history(12);
    const result = await compact(input(messages));
    expect(result.strategy).to.equal("summary");
    expect(result.status).to.equal("done");
    expectValid(result);
    expect(result.tokensAfter).to.be.below(result.tokensBefore);
    const summary = result.messages.find((m) => m.role === "user" && m.summary);
    expect(summary?.content.startsWith(SUMMARY_PREFIX)).to.equal(true);
    expect(result.messages.slice(-4)).to.deep.equal(messages.slice(-4));
  });

  it("sends the summary call a bounded transcript ending with the instruction", async () => {
    let request: ContextMessage[] = [];
    await compact(
      input(history(30), {
        summarize: async (r) => {
          request = r;
          return "## Goal\nA summary long enough to keep.";
        },
      }),
    );
    expect(request.map((m) => m.role)).to.deep.equal(["system", "user"]);
    expect(request[1]?.content).to.match(/CONTEXT CHECKPOINT COMPACTION[\s\S]*## Next steps$/);
    expect(countPromptTokens(request)).to.be.at.most(budget.limitTokens);
  });

  for (const [what, summarize] of [
    ["fails", async () => Promise.reject(new Error("model answered 500"))],
    ["returns garbage", async () => " .. "],
  ] as const) {
    it(`falls back to trimming when the summary call ${what}`, async () => {
      const result = await compact(input(history(12), { summarize }));
      expect(result.strategy).to.equal("trim");
      expect(result.status).to.equal("fallback");
      expect(result.summaryError).to.be.a("string");
      expectValid(result);
    });
  }

  it("trims without a model: caps tool results, then drops the oldest exchanges whole", async () => {
    const result = await compact(input(history(12), { summarize: null }));
    expect(result.strategy).to.equal("trim");
    expect(result.status).to.equal("done");
    expectValid(result);
    expect(result.tokensAfter).to.be.at.most(Math.floor(budget.limitTokens * 0.6));
  });

  it("cuts the current input when it alone is larger than the window (minimal context)", async () => {
    const huge: ContextMessage[] = [
      { role: "system", content: "You are a careful agent." },
      { role: "user", content: words(20_000, "big") },
    ];
    const result = await compact(input(huge));
    expect(result.strategy).to.equal("minimal");
    expectValid(result);
    const cut = result.messages.at(-1)?.content ?? "";
    expect(cut).to.match(/chars cut to fit the context/);
    expect(cut.startsWith("big0 big1")).to.equal(true);
  });

  it("shrinks the current exchange's own large tool results when nothing older is left", async () => {
    const messages = history(1, 9_000);
    const result = await compact(input(messages));
    expect(result.strategy).to.equal("trim");
    expectValid(result);
    expect(result.messages.filter((m) => m.role === "tool")).to.have.length(1);
  });

  it("rethrows an abort of the summary call", async () => {
    const aborted = Object.assign(new Error("request aborted"), { kind: "aborted" });
    let error: unknown = null;
    try {
      await compact(input(history(12), { summarize: async () => Promise.reject(aborted) }));
    } catch (err) {
      error = err;
    }
    expect(error).to.equal(aborted);
  });

  it("rethrows the errors the caller handles itself (a wait for the model's budget)", async () => {
    const deferral = Object.assign(new Error("held back"), { name: "ModelDeferral" });
    const summarize = async () => Promise.reject(deferral);
    const isCallerError = (err: unknown) => err === deferral;
    let error: unknown = null;
    try {
      await compact({ ...input(history(12), { summarize }), isCallerError });
    } catch (err) {
      error = err;
    }
    expect(error).to.equal(deferral);
    // Any other failure still falls back.
    const other = await compact({
      ...input(history(12), { summarize: async () => Promise.reject(new Error("500")) }),
      isCallerError,
    });
    expect(other.status).to.equal("fallback");
  });

  it("refuses a summary that would not make the context smaller", async () => {
    const short = history(2, 40);
    const long = words(600, "padding");
    const result = await compact(input(short, { summarize: async () => `## Goal\n${long}` }));
    expect(result.strategy).to.equal("trim");
    expect(result.status).to.equal("fallback");
    expect(result.summaryError).to.match(/did not make the context smaller/);
    expect(result.tokensAfter).to.be.at.most(result.tokensBefore);
  });
});
