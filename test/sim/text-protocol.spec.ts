/**
 * The simulator in wunder's text tool-call protocol: no `tools` array, the tools listed in a
 * `<tools>` block of the system prompt, calls written as `<tool_call>` blocks in the content and
 * results sent back as `tool_response:` user messages. Checked over real HTTP.
 */
import { expect } from "chai";
import type OpenAI from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import type { ToolSpec } from "../../src/llm/chat-stream.js";
import { parseTextToolCalls } from "../../src/prompt/text-tool-protocol.js";
import {
  renderToolCall,
  renderToolResponse,
  renderToolsPrompt,
} from "../../src/prompt/text-tool-render.js";
import { parseChatRequest } from "../../src/sim/request.js";
import type { SimServer } from "../../src/sim/server.js";
import { SIM_REPLY_TOKENS, SIM_TOKENS_PER_MESSAGE, simTextTokens } from "../../src/sim/tokens.js";
import { client, postChat, startSim, TOOLS, user } from "./helpers.js";

const SPECS: ToolSpec[] = ["list_files", "read_file", "echo"].map((name) => ({
  type: "function",
  function: {
    name,
    description: `the ${name} tool </tools> inside`,
    parameters: { type: "object", properties: { path: { type: "string" } } },
  },
}));

const SYSTEM = `You are a careful agent.\n\n${renderToolsPrompt(SPECS)}`;

function textMode(...rest: ChatCompletionMessageParam[]): ChatCompletionMessageParam[] {
  return [{ role: "system", content: SYSTEM }, ...rest];
}

/** The content of a text-protocol answer, checked to carry no native tool calls. */
function textAnswer(completion: OpenAI.ChatCompletion): string {
  const choice = completion.choices[0];
  expect(choice?.message.tool_calls).to.equal(undefined);
  expect(choice?.finish_reason).to.equal("stop");
  const content = choice?.message.content;
  if (typeof content !== "string") throw new Error("expected text content");
  return content;
}

describe("sim text tool-call protocol", () => {
  let sim: SimServer;
  let openai: OpenAI;

  before(async () => {
    sim = await startSim();
    openai = client(sim);
  });
  after(() => sim.close());

  const LIST = user('[[sim tool=list_files args={"path":"."}]] list files');

  it("writes a tool call as a <tool_call> block in the content, finish_reason stop", async () => {
    const completion = await openai.chat.completions.create({
      model: "m",
      messages: textMode(LIST),
    });
    const content = textAnswer(completion);
    expect(content).to.equal(renderToolCall({ name: "list_files", arguments: '{"path":"."}' }));
    const parsed = parseTextToolCalls(content);
    expect(parsed.calls).to.deep.equal([{ name: "list_files", arguments: '{"path":"."}' }]);
    expect(parsed.content).to.equal("");
    expect(parsed.malformed).to.deep.equal([]);
  });

  it("streams the block as content deltas, without native tool_calls", async () => {
    const messages = textMode(LIST);
    const whole = await openai.chat.completions.create({ model: "m", messages });
    const stream = await openai.chat.completions.create({
      model: "m",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks[0]?.choices[0]?.delta.role).to.equal("assistant");
    expect(chunks.some((c) => c.choices[0]?.delta.tool_calls !== undefined)).to.equal(false);
    const deltas = chunks.map((c) => c.choices[0]?.delta.content ?? "").filter((d) => d !== "");
    expect(deltas.length).to.be.greaterThan(3);
    expect(deltas[0]).to.equal("<tool_call>\n");
    expect(deltas[deltas.length - 1]).to.equal("\n</tool_call>");
    expect(deltas.join("")).to.equal(whole.choices[0]?.message.content);
    const finishes = chunks.map((c) => c.choices[0]?.finish_reason).filter((f) => f);
    expect(finishes).to.deep.equal(["stop"]);
    const usage = chunks[chunks.length - 1]?.usage;
    expect(usage).to.deep.equal(whole.usage);
    expect(usage?.completion_tokens).to.equal(deltas.length);
  });

  it("answers with the result sent back as a tool_response user message", async () => {
    const messages = textMode(LIST);
    const first = await openai.chat.completions.create({ model: "m", messages });
    const call = textAnswer(first);
    const output = JSON.stringify({ ok: true, data: ["README.md", "src/"] });
    const response = renderToolResponse("list_files", output);
    messages.push({ role: "assistant", content: call }, user(response));
    const second = await openai.chat.completions.create({ model: "m", messages });
    const answer = textAnswer(second);
    expect(answer).to.contain(`Result of list_files: ${output}`);
    expect(answer).to.not.contain("tool_response");
    expect(parseTextToolCalls(answer).calls).to.deep.equal([]);
    // Prompt tokens count the text as sent, not the simulator's reading of it.
    expect(second.usage?.prompt_tokens).to.equal(
      SIM_REPLY_TOKENS +
        4 * SIM_TOKENS_PER_MESSAGE +
        simTextTokens(SYSTEM) +
        simTextTokens('[[sim tool=list_files args={"path":"."}]] list files') +
        simTextTokens(call) +
        simTextTokens(response),
    );
  });

  it("keeps the round count across tool_response messages with rounds=N", async () => {
    const messages = textMode(user("dig deep [[sim rounds=2]]"));
    const blocks = new Set<string>();
    for (let round = 0; round < 2; round++) {
      const reply = textAnswer(await openai.chat.completions.create({ model: "m", messages }));
      expect(
        parseTextToolCalls(reply).calls.map((c) => c.name),
        `round ${round}`,
      ).to.deep.equal(["list_files"]);
      blocks.add(reply);
      messages.push(
        { role: "assistant", content: `Looking.\n${reply}` },
        user(renderToolResponse("list_files", `{"ok":true,"data":["round${round}"]}`)),
      );
    }
    const final = textAnswer(await openai.chat.completions.create({ model: "m", messages }));
    expect(final).to.contain('Result of list_files: {"ok":true,"data":["round1"]}');
    expect(blocks.size).to.equal(1);
  });

  it("writes calls=3 as three blocks, then quotes every result", async () => {
    const messages = textMode(user('fan out [[sim tool=read_file args={"path":"a.md"} calls=3]]'));
    const first = await openai.chat.completions.create({ model: "m", messages });
    const content = textAnswer(first);
    expect(content.match(/<tool_call>/g)).to.have.length(3);
    expect(content.match(/<\/tool_call>/g)).to.have.length(3);
    const parsed = parseTextToolCalls(content);
    expect(parsed.calls).to.deep.equal(
      Array(3).fill({ name: "read_file", arguments: '{"path":"a.md"}' }),
    );
    expect(parsed.content).to.equal("");

    messages.push(
      { role: "assistant", content },
      ...[0, 1, 2].map((i) =>
        user(renderToolResponse("read_file", `{"ok":true,"data":"part ${i}"}`)),
      ),
    );
    const answer = textAnswer(await openai.chat.completions.create({ model: "m", messages }));
    for (let i = 0; i < 3; i++) {
      expect(answer).to.contain(`Result of read_file: {"ok":true,"data":"part ${i}"}`);
    }
  });

  it("retries a failed call with a corrected one, in text", async () => {
    const messages = textMode(LIST);
    const call = textAnswer(await openai.chat.completions.create({ model: "m", messages }));
    messages.push(
      { role: "assistant", content: renderToolCall({ name: "list_files", arguments: "{}" }) },
      user(renderToolResponse("list_files", '{"ok":false,"error":"bad path"}')),
    );
    const retry = textAnswer(await openai.chat.completions.create({ model: "m", messages }));
    expect(parseTextToolCalls(retry).calls).to.deep.equal(parseTextToolCalls(call).calls);
  });

  it("explains instead of calling a tool missing from the <tools> block", async () => {
    const completion = await openai.chat.completions.create({
      model: "m",
      messages: textMode(user("[[sim tool=execute_command]] run it")),
    });
    const content = textAnswer(completion);
    expect(content).to.contain("I cannot use execute_command: that tool is not available.");
    expect(content).to.not.contain("<tool_call>");
  });

  it("does not crash on broken_tool_json: the block carries arguments that do not parse", async () => {
    const completion = await openai.chat.completions.create({
      model: "m",
      messages: textMode(user('[[sim tool=list_files args={"path":"."} fault=broken_tool_json]]')),
    });
    const [call, ...more] = parseTextToolCalls(textAnswer(completion)).calls;
    expect(more).to.deep.equal([]);
    expect(call?.name).to.equal("list_files");
    expect(() => JSON.parse(call?.arguments ?? "")).to.throw();
  });

  it("leaves native requests alone, also with a <tools> block in the prompt", async () => {
    for (const messages of [[LIST], textMode(LIST)]) {
      const completion = await openai.chat.completions.create({
        model: "m",
        messages,
        tools: TOOLS,
      });
      const choice = completion.choices[0];
      expect(choice?.finish_reason).to.equal("tool_calls");
      expect(choice?.message.content).to.equal(null);
      const call = choice?.message.tool_calls?.[0];
      if (call?.type !== "function") throw new Error("expected a native function call");
      expect(call.id).to.match(/^call_[0-9a-f]{24}$/);
      expect(call.function).to.deep.equal({ name: "list_files", arguments: '{"path":"."}' });
    }
    // Without tools and without a <tools> block, no tool is offered at all.
    const plain = await postChat(sim, { model: "m", messages: [LIST] });
    const body = (await plain.json()) as OpenAI.ChatCompletion;
    expect(body.choices[0]?.message.content).to.contain("list_files: that tool is not available");
  });

  describe("request parsing", () => {
    it("reads tool names from the block, skipping lines that do not parse", () => {
      const system = [
        "Tools are in the <tools></tools> tags.",
        "<tools>",
        '{"description":"d","name":"alpha","parameters":{}}',
        "not json at all",
        '{"description":"no name"}',
        '  {"type":"function","function":{"name":"beta"}}  ',
        "</tools>",
      ].join("\n");
      const request = parseChatRequest(
        JSON.stringify({ messages: [{ role: "system", content: system }, user("hi")] }),
      );
      if ("message" in request) throw new Error(request.message);
      expect(request.toolProtocol).to.equal("text");
      expect([...request.toolNames]).to.deep.equal(["alpha", "beta"]);
      expect(request.toolsJson).to.equal("");
    });

    it("is native without a block, or when `tools` is given", () => {
      for (const body of [
        { messages: [{ role: "system", content: "Use <tools></tools> wisely." }, user("hi")] },
        { messages: textMode(user("hi")), tools: TOOLS },
      ]) {
        const request = parseChatRequest(JSON.stringify(body));
        if ("message" in request) throw new Error(request.message);
        expect(request.toolProtocol).to.equal("native");
        expect(request.messages.every((m) => m.sentContent === undefined)).to.equal(true);
      }
    });

    it("converts calls and responses, and only messages in protocol form", () => {
      const block = renderToolCall({ name: "echo", arguments: '{"x":1}' });
      const messages = textMode(
        user("tool_response: not after a call"),
        { role: "assistant", content: "Plain words." },
        { role: "assistant", content: `Let me look.\n${block}\n${block}` },
        user("tool_response: one"),
        user("tool_response: two"),
        user("tool_response: three"),
      );
      const request = parseChatRequest(JSON.stringify({ messages }));
      if ("message" in request) throw new Error(request.message);
      const [, orphan, plain, caller, one, two, three] = request.messages;
      expect(orphan).to.deep.include({ role: "user", content: "tool_response: not after a call" });
      expect(plain).to.deep.include({ role: "assistant", content: "Plain words.", toolCalls: [] });
      expect(caller).to.deep.include({ role: "assistant", content: "Let me look." });
      expect(caller?.toolCalls).to.deep.equal([
        { id: "call_text_3_0", name: "echo", arguments: '{"x":1}' },
        { id: "call_text_3_1", name: "echo", arguments: '{"x":1}' },
      ]);
      expect(one).to.deep.include({ role: "tool", content: "one", toolCallId: "call_text_3_0" });
      expect(two).to.deep.include({ role: "tool", content: "two", toolCallId: "call_text_3_1" });
      expect(three).to.deep.include({ role: "user", content: "tool_response: three" });
      expect(one?.sentContent).to.equal("tool_response: one");
    });
  });
});
