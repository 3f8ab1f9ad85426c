import { expect } from "chai";
import { encode } from "gpt-tokenizer/encoding/o200k_base";
import type { ContextMessage } from "../../src/context/message.js";
import {
  CALIBRATION_ALPHA,
  MAX_RATIO,
  MIN_RATIO,
  nonLatinShare,
  TokenCalibration,
} from "../../src/context/token-calibration.js";
import {
  countMessage,
  countMessageTokens,
  countNonLatinChars,
  countPrompt,
  countPromptTokens,
  countTextTokens,
  countToolsTokens,
  REPLY_PRIMING_TOKENS,
  TOKENS_PER_MESSAGE,
  TOKENS_PER_TOOL_CALL,
} from "../../src/context/token-count.js";

const tokens = (text: string) => encode(text, { disallowedSpecial: new Set() }).length;

describe("token count (o200k_base)", () => {
  it("counts text with the o200k_base tokenizer", () => {
    expect(countTextTokens("")).to.equal(0);
    expect(countTextTokens("hello world")).to.equal(2);
    const mixed = 'Refactor `parseChatRequest()` — 上下文管理器 {"ok":true}';
    expect(countTextTokens(mixed)).to.equal(tokens(mixed));
  });

  it("counts special-token spellings as plain text instead of throwing", () => {
    expect(countTextTokens("<|endoftext|>")).to.be.greaterThan(1);
    expect(countMessageTokens({ role: "user", content: "a <|im_start|> b" })).to.be.greaterThan(
      TOKENS_PER_MESSAGE + 2,
    );
  });

  it("frames each message: 3 + role + content, calls and call ids included", () => {
    const content = "What does this function return?";
    expect(countMessageTokens({ role: "user", content })).to.equal(
      TOKENS_PER_MESSAGE + tokens("user") + tokens(content),
    );
    const call: ContextMessage = {
      role: "assistant",
      content: "Let me look.",
      tool_calls: [
        { id: "call_1", name: "read_file", arguments: '{"path":"src/a.ts"}' },
        { id: "call_2", name: "list_files", arguments: "{}" },
      ],
    };
    expect(countMessageTokens(call)).to.equal(
      TOKENS_PER_MESSAGE +
        tokens("assistant") +
        tokens("Let me look.") +
        2 * TOKENS_PER_TOOL_CALL +
        tokens("read_file") +
        tokens('{"path":"src/a.ts"}') +
        tokens("list_files") +
        tokens("{}"),
    );
    const result: ContextMessage = { role: "tool", tool_call_id: "call_1", content: "export {}" };
    expect(countMessageTokens(result)).to.equal(
      TOKENS_PER_MESSAGE + tokens("tool") + tokens("call_1") + tokens("export {}"),
    );
  });

  it("counts a prompt: messages + reply priming + tools JSON", () => {
    const messages: ContextMessage[] = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ];
    const tools = [
      { type: "function", function: { name: "echo", description: "", parameters: {} } },
    ];
    const bare =
      countMessageTokens(messages[0] as ContextMessage) +
      countMessageTokens(messages[1] as ContextMessage);
    expect(countPromptTokens(messages)).to.equal(bare + REPLY_PRIMING_TOKENS);
    expect(countPromptTokens(messages, tools)).to.equal(
      bare + REPLY_PRIMING_TOKENS + tokens(JSON.stringify(tools)),
    );
    expect(countPromptTokens(messages, JSON.stringify(tools))).to.equal(
      countPromptTokens(messages, tools),
    );
    expect(countToolsTokens([])).to.equal(0);
    expect(countPromptTokens([])).to.equal(REPLY_PRIMING_TOKENS);
  });

  it("counts non-Latin characters beside the tokens", () => {
    expect(countNonLatinChars("plain ASCII, café — “quoted”")).to.equal(0);
    expect(countNonLatinChars("上下文 Привет")).to.equal(9);
    const m: ContextMessage = { role: "user", content: "修复 the bug" };
    expect(countMessage(m)).to.deep.equal({ tokens: countMessageTokens(m), nonLatinChars: 2 });
    const prompt = countPrompt([m, { role: "assistant", content: "好的" }], "[]");
    expect(prompt.nonLatinChars).to.equal(4);
    expect(prompt.tokens).to.equal(
      countPromptTokens([m, { role: "assistant", content: "好的" }], "[]"),
    );
  });

  it("caches per message object, and re-counting a long history is fast", () => {
    const history: ContextMessage[] = [];
    for (let i = 0; i < 2000; i++) {
      history.push({
        role: i % 2 ? "assistant" : "user",
        content: `Message ${i}: ${"the build failed in step four because the cache was cold; ".repeat(8)}`,
      });
    }
    const first = countPromptTokens(history);
    const start = performance.now();
    const again = countPromptTokens(history);
    const cachedMs = performance.now() - start;
    expect(again).to.equal(first);
    expect(cachedMs).to.be.lessThan(50);
    // A new object with the same content counts the same.
    const copy = { ...(history[0] as ContextMessage) };
    expect(countMessageTokens(copy)).to.equal(countMessageTokens(history[0] as ContextMessage));
  });
});

describe("TokenCalibration", () => {
  it("starts at 1 and applies the ratio to raw estimates", () => {
    const c = new TokenCalibration();
    expect(c.ratio("m")).to.equal(1);
    expect(c.estimate("m", 1000)).to.equal(1000);
  });

  it("moves the ratio by an exponential moving average of reported / estimated", () => {
    const c = new TokenCalibration();
    const r1 = c.observe("m", 1200, 1000);
    expect(r1).to.be.closeTo(1 + CALIBRATION_ALPHA * 0.2, 1e-12);
    const r2 = c.observe("m", 1200, 1000);
    expect(r2).to.be.closeTo(r1 + CALIBRATION_ALPHA * (1.2 - r1), 1e-12);
    for (let i = 0; i < 50; i++) c.observe("m", 1200, 1000);
    expect(c.ratio("m")).to.be.closeTo(1.2, 1e-6);
    expect(c.estimate("m", 1000)).to.equal(1200);
    expect(c.ratio("other")).to.equal(1);
  });

  it("clamps the ratio to [0.5, 2]", () => {
    const c = new TokenCalibration(1);
    expect(c.observe("m", 10_000, 100)).to.equal(MAX_RATIO);
    expect(c.observe("m", 1, 100)).to.equal(MIN_RATIO);
  });

  it("ignores observations without a positive report and estimate", () => {
    const c = new TokenCalibration();
    c.observe("m", 0, 100);
    c.observe("m", 100, 0);
    c.observe("m", Number.NaN, 100);
    c.observe("m", Number.POSITIVE_INFINITY, 100);
    expect(c.ratio("m")).to.equal(1);
  });

  it("learns how the ratio moves with the non-Latin share of the prompt", () => {
    // A provider that counts Latin text like us but every non-Latin character 0.4 tokens more.
    const provider = (c: { tokens: number; nonLatinChars: number }) =>
      Math.round(1.05 * c.tokens + 0.4 * c.nonLatinChars);
    const prompts = Array.from({ length: 40 }, (_, i) => {
      const tokens = 1000 + 137 * i;
      const share = [0, 0.1, 0.45, 0.2, 0][i % 5] as number;
      return { tokens, nonLatinChars: Math.round(share * tokens) };
    });
    const c = new TokenCalibration();
    const scalar = new TokenCalibration();
    for (const p of prompts) {
      c.observe("m", provider(p), p);
      scalar.observe("m", provider(p), p.tokens);
    }
    for (const p of [
      { tokens: 5000, nonLatinChars: 0 },
      { tokens: 5000, nonLatinChars: 2500 },
    ]) {
      const error = Math.abs(c.estimate("m", p) - provider(p)) / provider(p);
      expect(error).to.be.lessThan(0.005);
    }
    expect(c.ratio("m", 0)).to.be.closeTo(1.05, 0.005);
    expect(nonLatinShare({ tokens: 10, nonLatinChars: 5 })).to.equal(0.5);
    // One ratio cannot fit both: the scalar calibration misses one side by several percent.
    const zh = { tokens: 5000, nonLatinChars: 2500 };
    expect(Math.abs(scalar.estimate("m", zh) - provider(zh)) / provider(zh)).to.be.greaterThan(
      0.05,
    );
  });

  it("with TokenCounts of Latin-only prompts, behaves exactly like the moving average", () => {
    const a = new TokenCalibration();
    const b = new TokenCalibration();
    for (const [reported, tokens] of [
      [1100, 1000],
      [950, 1000],
      [3300, 3000],
    ] as const) {
      a.observe("m", reported, tokens);
      b.observe("m", reported, { tokens, nonLatinChars: 0 });
    }
    expect(b.ratio("m")).to.be.closeTo(a.ratio("m"), 1e-9);
    expect(b.estimate("m", { tokens: 777, nonLatinChars: 0 })).to.equal(a.estimate("m", 777));
  });

  it("resets one model or all, and refuses a bad alpha", () => {
    const c = new TokenCalibration(1);
    c.observe("a", 150, 100);
    c.observe("b", 150, 100);
    c.reset("a");
    expect(c.ratio("a")).to.equal(1);
    expect(c.ratio("b")).to.equal(1.5);
    c.reset();
    expect(c.ratio("b")).to.equal(1);
    expect(() => new TokenCalibration(0)).to.throw();
    expect(() => new TokenCalibration(1.5)).to.throw();
  });
});
