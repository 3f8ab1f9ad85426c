import { expect } from "chai";
import { parseDirectives } from "../../src/sim/directives.js";

describe("sim directives", () => {
  it("reads every key of a block and strips the block from the text", () => {
    const parsed = parseDirectives(
      "please [[sim tool=read_file rounds=2 reply_tokens=7 fault=429 fault_times=3 retry_after_s=2 ttft_ms=5 token_delay_ms=6]] go",
    );
    expect(parsed.text).to.equal("please   go");
    expect(parsed.directives).to.deep.equal({
      tool: "read_file",
      rounds: 2,
      replyTokens: 7,
      fault: "429",
      faultTimes: 3,
      retryAfterS: 2,
      ttftMs: 5,
      tokenDelayMs: 6,
    });
  });

  it("reads calls=1..16 and every fault kind, cut included", () => {
    expect(parseDirectives("[[sim calls=4]]").directives).to.deep.equal({ calls: 4 });
    expect(parseDirectives("[[sim calls=1]]").directives.calls).to.equal(1);
    expect(parseDirectives("[[sim calls=16]]").directives.calls).to.equal(16);
    for (const bad of ["0", "17", "-1", "two", "2.5"]) {
      expect(parseDirectives(`[[sim calls=${bad}]]`).directives, bad).to.deep.equal({});
    }
    for (const fault of ["429", "500", "hang", "cut", "broken_tool_json", "context_overflow"]) {
      expect(parseDirectives(`[[sim fault=${fault}]]`).directives.fault).to.equal(fault);
    }
    expect(parseDirectives("[[sim fault=cut fault_times=1]] hi")).to.deep.equal({
      directives: { fault: "cut", faultTimes: 1 },
      text: "hi",
    });
  });

  it("parses args as a balanced JSON object that may hold spaces, braces and brackets", () => {
    const { directives } = parseDirectives(
      '[[sim tool=echo args={"text": "a } b ]] c", "n": {"deep": [1, 2]}} rounds=1]]',
    );
    expect(directives.tool).to.equal("echo");
    expect(JSON.parse(directives.args ?? "")).to.deep.equal({
      text: "a } b ]] c",
      n: { deep: [1, 2] },
    });
    expect(directives.rounds).to.equal(1);
  });

  it("lets later keys win, across blocks too", () => {
    const { directives } = parseDirectives("[[sim rounds=1 rounds=2]] x [[sim rounds=3]]");
    expect(directives.rounds).to.equal(3);
  });

  it("ignores invalid values and keeps an earlier valid one", () => {
    const { directives } = parseDirectives(
      "[[sim rounds=2 rounds=two fault=boom reply_tokens=-1 args=[1] args={bad tool=a/b]]",
    );
    expect(directives).to.deep.equal({ rounds: 2 });
  });

  it("closes a block right after a value", () => {
    const parsed = parseDirectives("[[sim reply_tokens=3]]hello");
    expect(parsed.directives.replyTokens).to.equal(3);
    expect(parsed.text).to.equal("hello");
  });

  it("treats an unclosed block or a longer word as text", () => {
    expect(parseDirectives("[[sim rounds=2").directives).to.deep.equal({});
    expect(parseDirectives("[[sim rounds=2").text).to.equal("[[sim rounds=2");
    expect(parseDirectives("[[simulate rounds=2]]").directives).to.deep.equal({});
  });

  it("finds nothing in plain text", () => {
    expect(parseDirectives("list the files")).to.deep.equal({
      directives: {},
      text: "list the files",
    });
  });
});
