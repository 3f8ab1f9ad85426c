import { expect } from "chai";
import { parseDirectives } from "../../src/sim/directives.js";
import { breakArguments, FaultInjector } from "../../src/sim/faults.js";
import { LruMap } from "../../src/sim/lru.js";
import { parseChatRequest } from "../../src/sim/request.js";
import { locateTurn } from "../../src/sim/script.js";
import {
  estimatePromptTokens,
  SIM_REPLY_TOKENS,
  SIM_TOKENS_PER_MESSAGE,
  simTextTokens,
  textPieces,
  withFiller,
} from "../../src/sim/tokens.js";
import { simConfig } from "./helpers.js";

const position = (round: number) => ({ turnKey: "t", round, lastUserContent: "" });

describe("sim faults", () => {
  it("spends a fault_times budget per model round", () => {
    const faults = new FaultInjector(simConfig());
    const { directives } = parseDirectives("[[sim fault=500 fault_times=2]]");
    const picks = [0, 0, 0, 1, 1, 1].map((round) => faults.pick(directives, position(round)));
    expect(picks).to.deep.equal(["500", "500", undefined, "500", "500", undefined]);
  });

  it("spends a broken_tool_json budget across rounds, so the next round's call succeeds", () => {
    const faults = new FaultInjector(simConfig());
    const { directives } = parseDirectives("[[sim fault=broken_tool_json fault_times=1]]");
    expect(faults.pick(directives, position(0))).to.equal("broken_tool_json");
    expect(faults.pick(directives, position(1))).to.equal(undefined);
  });

  it("fails every request without fault_times", () => {
    const faults = new FaultInjector(simConfig());
    const { directives } = parseDirectives("[[sim fault=hang]]");
    for (let i = 0; i < 5; i++) expect(faults.pick(directives, position(0))).to.equal("hang");
  });

  it("draws rate faults reproducibly from the seed", () => {
    const draws = (seed: number) => {
      const faults = new FaultInjector(simConfig({ seed, faultRate429: 0.3, faultRate500: 0.3 }));
      return Array.from({ length: 40 }, () => faults.pick({}, position(0)) ?? "ok");
    };
    const run = draws(7);
    expect(draws(7)).to.deep.equal(run);
    expect(new Set(run)).to.deep.equal(new Set(["429", "500", "ok"]));
    expect(draws(8)).to.not.deep.equal(run);
  });

  it("cuts tool arguments into JSON that does not parse", () => {
    for (const args of ["{}", '{"path":"."}', '{"command":"echo {}"}']) {
      expect(() => JSON.parse(breakArguments(args)), args).to.throw(SyntaxError);
    }
  });
});

describe("sim LRU map", () => {
  it("forgets the least recently used key beyond its bound", () => {
    const lru = new LruMap<string, number>(2);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.get("a");
    lru.set("c", 3);
    expect([lru.get("a"), lru.get("b"), lru.get("c"), lru.size]).to.deep.equal([
      1,
      undefined,
      3,
      2,
    ]);
  });
});

describe("sim tokens", () => {
  it("splits text into word tokens that join back to the text", () => {
    const text = '  Result of x:\n{"a": 1}  end ';
    expect(textPieces(text).join("")).to.equal(text);
    expect(textPieces(text)).to.have.length(6);
  });

  it("pads with deterministic filler up to the token count", () => {
    const a = withFiller("Hello.", 10, "k");
    expect(textPieces(a)).to.have.length(10);
    expect(withFiller("Hello.", 10, "k")).to.equal(a);
    expect(withFiller("one two three", 2, "k")).to.equal("one two three");
  });

  it("counts prompt tokens with cl100k_base: 4 per message, 2 for the reply, tools JSON", () => {
    const tools = [{ type: "function", function: { name: "ab" } }];
    const request = parseChatRequest(
      JSON.stringify({
        messages: [
          { role: "user", content: "x".repeat(10) },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "ab", arguments: "{}" } }],
          },
        ],
        tools,
      }),
    );
    if ("message" in request) throw new Error(request.message);
    expect(request.toolsJson).to.equal(JSON.stringify(tools));
    const expected =
      SIM_REPLY_TOKENS +
      simTextTokens(JSON.stringify(tools)) +
      (SIM_TOKENS_PER_MESSAGE + simTextTokens("x".repeat(10))) +
      (SIM_TOKENS_PER_MESSAGE + simTextTokens("ab") + simTextTokens("{}"));
    expect(estimatePromptTokens(request)).to.equal(expected);
    expect(locateTurn(request.messages).round).to.equal(1);
  });

  it("tokenizes like cl100k_base, not chars/4, and treats special-token text as text", () => {
    // "hello world" is 2 tokens in cl100k_base; chars/4 would say 3.
    expect(simTextTokens("hello world")).to.equal(2);
    expect(simTextTokens("")).to.equal(0);
    expect(simTextTokens("<|endoftext|>")).to.be.greaterThan(1);
    const request = parseChatRequest(JSON.stringify({ messages: [{ role: "user", content: "" }] }));
    if ("message" in request) throw new Error(request.message);
    expect(request.toolsJson).to.equal("");
    expect(estimatePromptTokens(request)).to.equal(SIM_REPLY_TOKENS + SIM_TOKENS_PER_MESSAGE);
  });
});
