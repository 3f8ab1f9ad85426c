import { expect } from "chai";
import { parseDirectives } from "../../src/sim/directives.js";
import { breakArguments } from "../../src/sim/faults.js";
import type { SimMessage } from "../../src/sim/request.js";
import { locateTurn, planReply, type Reply } from "../../src/sim/script.js";
import { textPieces } from "../../src/sim/tokens.js";

const ALL_TOOLS = new Set(["list_files", "read_file", "execute_command", "echo"]);

const msg = (role: SimMessage["role"], content: string, extra: Partial<SimMessage> = {}) => ({
  role,
  content,
  toolCalls: [],
  toolCallId: undefined,
  ...extra,
});

function plan(messages: SimMessage[], toolNames: ReadonlySet<string> = ALL_TOOLS): Reply {
  const position = locateTurn(messages);
  const { directives, text } = parseDirectives(position.lastUserContent);
  return planReply({ messages, toolNames, directives, userText: text, position });
}

function calls(reply: Reply) {
  if (reply.kind !== "tool_calls") throw new Error(`expected tool calls, got: ${reply.text}`);
  return reply.calls;
}

/** The conversation after the model called `reply`'s tools and each answered `results[i]`. */
function afterTools(messages: SimMessage[], reply: Reply, results: string[]): SimMessage[] {
  const made = calls(reply);
  if (made.length !== results.length) throw new Error(`${made.length} calls made`);
  return [
    ...messages,
    msg("assistant", "", { toolCalls: made }),
    ...made.map((call, i) => msg("tool", results[i] ?? "", { toolCallId: call.id })),
  ];
}

/** The conversation after the model called `reply`'s one tool and the tool answered `result`. */
function afterTool(messages: SimMessage[], reply: Reply, result: string): SimMessage[] {
  return afterTools(messages, reply, [result]);
}

/** The reply with its first call's arguments cut, as the broken_tool_json fault does. */
function broken(reply: Reply): Reply {
  const [first, ...rest] = calls(reply);
  if (!first) throw new Error("no call to break");
  return {
    kind: "tool_calls",
    calls: [{ ...first, arguments: breakArguments(first.arguments) }, ...rest],
  };
}

function toolCall(reply: Reply) {
  const [call, ...more] = calls(reply);
  if (!call || more.length > 0) throw new Error(`expected one tool call, got ${1 + more.length}`);
  return { name: call.name, args: JSON.parse(call.arguments) };
}

describe("sim script", () => {
  it("counts the round from the assistant messages after the last user message", () => {
    const messages = [
      msg("system", "s"),
      msg("user", "a"),
      msg("assistant", "x"),
      msg("user", "b"),
      msg("assistant", ""),
      msg("tool", "r"),
      msg("assistant", ""),
    ];
    const position = locateTurn(messages);
    expect(position.round).to.equal(2);
    expect(position.lastUserContent).to.equal("b");
  });

  it("picks tools from the user's words", () => {
    expect(toolCall(plan([msg("user", "what files are here?")]))).to.deep.equal({
      name: "list_files",
      args: { path: "." },
    });
    expect(toolCall(plan([msg("user", "please read src/main.ts.")]))).to.deep.equal({
      name: "read_file",
      args: { path: "src/main.ts" },
    });
    expect(toolCall(plan([msg("user", "run `ls -la files` now")]))).to.deep.equal({
      name: "execute_command",
      args: { command: "ls -la files" },
    });
  });

  it("answers plain questions with an echo padded to reply_tokens", () => {
    const reply = plan([msg("user", "how are you today [[sim reply_tokens=30]]")]);
    expect(reply.kind).to.equal("text");
    if (reply.kind !== "text") return;
    expect(reply.text.startsWith("You asked: how are you today.")).to.equal(true);
    expect(textPieces(reply.text)).to.have.length(30);
    expect(reply.text).not.to.contain("[[sim");
  });

  it("says so instead of calling a tool that was not offered", () => {
    const reply = plan([msg("user", "list the files")], new Set(["read_file"]));
    expect(reply).to.have.property("kind", "text");
    expect(reply.kind === "text" && reply.text).to.contain(
      "list_files: that tool is not available",
    );
  });

  it("calls the tool= tool with args= in round 0 and answers with its result in round 1", () => {
    const first = [msg("user", 'go [[sim tool=echo args={"text": "hi there"}]]')];
    const call = plan(first);
    expect(toolCall(call)).to.deep.equal({ name: "echo", args: { text: "hi there" } });
    const answer = plan(afterTool(first, call, '{"ok":true,"data":"hi there"}'));
    expect(answer.kind === "text" && answer.text).to.match(
      /^Result of echo: \{"ok":true,"data":"hi there"\}/,
    );
  });

  it("calls a tool in rounds 0..N-1 and answers in round N", () => {
    let messages = [msg("user", "work hard [[sim rounds=3]]")];
    for (let round = 0; round < 3; round++) {
      const reply = plan(messages);
      expect(toolCall(reply).name, `round ${round}`).to.equal("list_files");
      messages = afterTool(messages, reply, `{"ok":true,"data":["f${round}"]}`);
    }
    const answer = plan(messages);
    expect(answer.kind === "text" && answer.text).to.contain('Result of list_files: {"ok":true');
  });

  it("corrects a call with broken arguments, but not from round 3 on", () => {
    let messages = [msg("user", "list files")];
    const failed = '{"ok":false,"error":"arguments are not valid JSON"}';
    for (let round = 0; round < 3; round++) {
      const reply = plan(messages);
      expect(toolCall(reply), `round ${round}`).to.deep.equal({
        name: "list_files",
        args: { path: "." },
      });
      messages = afterTool(messages, broken(reply), failed);
    }
    const answer = plan(messages);
    expect(answer.kind === "text" && answer.text).to.contain(`Result of list_files: ${failed}`);
  });

  it("never repeats a failed call unchanged: it answers with the failure instead", () => {
    const first = [msg("user", '[[sim tool=read_file args={"path": 42}]] read it')];
    const failed = '{"ok":false,"error":"invalid arguments for read_file: path"}';
    const answer = plan(afterTool(first, plan(first), failed));
    expect(answer.kind === "text" && answer.text).to.contain(`Result of read_file: ${failed}`);
  });

  it("gives every round its own deterministic call id", () => {
    const first = [msg("user", "list files [[sim rounds=2]]")];
    const r0 = plan(first);
    const r1 = plan(afterTool(first, r0, '{"ok":true}'));
    expect(plan(first)).to.deep.equal(r0);
    expect(calls(r0)[0]?.id).to.match(/^call_[0-9a-f]{24}$/);
    expect(calls(r1)[0]?.id).to.not.equal(calls(r0)[0]?.id);
  });

  it("makes calls=N calls of the tool per round, with distinct ids and the same arguments", () => {
    const first = [msg("user", 'go [[sim tool=echo args={"text": "x"} calls=3 rounds=2]]')];
    const r0 = plan(first);
    expect(plan(first)).to.deep.equal(r0);
    const made = calls(r0);
    expect(made.map((c) => c.name)).to.deep.equal(["echo", "echo", "echo"]);
    expect(made.map((c) => JSON.parse(c.arguments))).to.deep.equal([
      { text: "x" },
      { text: "x" },
      { text: "x" },
    ]);
    expect(new Set(made.map((c) => c.id)).size).to.equal(3);
    for (const call of made) expect(call.id).to.match(/^call_[0-9a-f]{24}$/);

    const second = afterTools(first, r0, ['{"ok":true,"data":"a"}', "b", "c"]);
    const r1 = plan(second);
    expect(calls(r1)).to.have.length(3);
    const ids = new Set([...made, ...calls(r1)].map((c) => c.id));
    expect(ids.size, "ids differ across rounds").to.equal(6);

    const answer = plan(afterTools(second, r1, ["r1", "r2", "r3"]));
    if (answer.kind !== "text") throw new Error("expected the answer");
    expect(answer.text).to.match(/^Result of echo: r1\nResult of echo: r2\nResult of echo: r3 /);
  });

  it("makes one call with calls=1, as without the directive", () => {
    const withOne = plan([msg("user", "list files [[sim calls=1]]")]);
    const without = plan([msg("user", "list files")]);
    expect(calls(withOne)).to.have.length(1);
    expect(calls(withOne)[0]?.name).to.equal(calls(without)[0]?.name);
  });

  it("calls again only the calls of a round that failed", () => {
    const first = [msg("user", "list files [[sim calls=3]]")];
    const failed = '{"ok":false,"error":"arguments are not valid JSON"}';
    const r0 = broken(plan(first));
    const r1 = plan(afterTools(first, r0, [failed, '{"ok":true,"data":[]}', '{"ok":true}']));
    expect(toolCall(r1)).to.deep.equal({ name: "list_files", args: { path: "." } });
    const answer = plan(afterTool(afterTools(first, r0, [failed, "x", "y"]), r1, '{"ok":true}'));
    expect(answer.kind === "text" && answer.text).to.match(/^Result of list_files: \{"ok":true\}/);
  });
});
