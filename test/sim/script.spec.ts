import { expect } from "chai";
import { parseDirectives } from "../../src/sim/directives.js";
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

/** The conversation after the model called `reply`'s tool and the tool answered `result`. */
function afterTool(messages: SimMessage[], reply: Reply, result: string): SimMessage[] {
  if (reply.kind !== "tool_call") throw new Error(`expected a tool call, got: ${reply.text}`);
  return [
    ...messages,
    msg("assistant", "", { toolCalls: [reply.call] }),
    msg("tool", result, { toolCallId: reply.call.id }),
  ];
}

function toolCall(reply: Reply) {
  if (reply.kind !== "tool_call") throw new Error(`expected a tool call, got: ${reply.text}`);
  return { name: reply.call.name, args: JSON.parse(reply.call.arguments) };
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

  it("retries a failed tool call with valid arguments, but not from round 3 on", () => {
    let messages = [msg("user", "list files")];
    const failed = '{"ok":false,"error":"arguments are not valid JSON"}';
    for (let round = 0; round < 3; round++) {
      const reply = plan(messages);
      expect(toolCall(reply), `round ${round}`).to.deep.equal({
        name: "list_files",
        args: { path: "." },
      });
      messages = afterTool(messages, reply, failed);
    }
    const answer = plan(messages);
    expect(answer.kind === "text" && answer.text).to.contain(`Result of list_files: ${failed}`);
  });

  it("gives every round its own deterministic call id", () => {
    const first = [msg("user", "list files [[sim rounds=2]]")];
    const r0 = plan(first);
    const r1 = plan(afterTool(first, r0, '{"ok":true}'));
    expect(plan(first)).to.deep.equal(r0);
    expect(r0.kind === "tool_call" && r0.call.id).to.match(/^call_[0-9a-f]{24}$/);
    expect(r1.kind === "tool_call" && r1.call.id).to.not.equal(
      r0.kind === "tool_call" && r0.call.id,
    );
  });
});
