/**
 * The prompt pipeline's request shapes for both tool protocols, the text-mode answer parser's
 * wiring, the delta filter that keeps tool-call blocks out of the stream, and the frozen
 * session system prompt.
 */
import { expect } from "chai";
import type { ContextMessage } from "../../src/context/message.js";
import type { ChatResult, ToolSpec } from "../../src/llm/chat-stream.js";
import { PromptPipeline } from "../../src/prompt/prompt-pipeline.js";
import { DEFAULT_SYSTEM_PROMPT, sessionSystemPrompt } from "../../src/prompt/system-prompt.js";
import { parseTextToolCalls } from "../../src/prompt/text-tool-protocol.js";
import { TOOL_RESPONSE_PREFIX } from "../../src/prompt/text-tool-render.js";
import { ToolCallDeltaFilter } from "../../src/prompt/tool-call-delta-filter.js";

const SPECS: ToolSpec[] = [
  {
    type: "function",
    function: {
      name: "read_file",
      description: "Read a file of the workspace.",
      parameters: { type: "object", properties: { path: { type: "string" } }, required: ["path"] },
    },
  },
];

const HISTORY: ContextMessage[] = [
  { role: "system", content: "You are careful." },
  { role: "user", content: "show me a.txt" },
  {
    role: "assistant",
    content: "Reading it.",
    tool_calls: [{ id: "c1", name: "read_file", arguments: '{"path":"a.txt"}' }],
  },
  { role: "tool", tool_call_id: "c1", content: '{"ok":true,"data":"hello"}' },
];

const answer = (content: string): ChatResult => ({
  content,
  toolCalls: [],
  finishReason: "stop",
  usage: null,
});

describe("prompt: pipeline", () => {
  it("native: sends the context and the specs as they are", () => {
    const request = new PromptPipeline("native").request(HISTORY, SPECS);
    expect(request.messages).to.deep.equal(HISTORY);
    expect(request.tools).to.deep.equal(SPECS);
    const result = answer("<tool_call>{}</tool_call>");
    expect(new PromptPipeline("native").answer(result)).to.equal(result);
  });

  it("text: lists the tools in the system message and writes calls and results as text", () => {
    const request = new PromptPipeline("text").request(HISTORY, SPECS);
    expect(request.tools).to.deep.equal([]);
    const [system, user, assistant, result] = request.messages;
    expect(system?.role).to.equal("system");
    expect(system?.content).to.match(/^You are careful\.\n\n# Tools\n/);
    expect(system?.content).to.contain('"name":"read_file"');
    expect(user).to.equal(HISTORY[1]);
    expect(assistant).to.deep.equal({
      role: "assistant",
      content:
        'Reading it.\n<tool_call>\n{"name":"read_file","arguments":{"path":"a.txt"}}\n</tool_call>',
    });
    // What the history says was called, the parser reads back as the same call.
    expect(parseTextToolCalls(String(assistant?.content)).calls).to.deep.equal([
      { name: "read_file", arguments: '{"path":"a.txt"}' },
    ]);
    expect(result).to.deep.equal({
      role: "user",
      content: `${TOOL_RESPONSE_PREFIX}{"ok":true,"data":"hello"}`,
    });
    // The context itself is untouched.
    expect(HISTORY[2]).to.have.property("tool_calls");
  });

  it("text: adds a system message for the tools when the context has none", () => {
    const request = new PromptPipeline("text").request(HISTORY.slice(1), SPECS);
    expect(request.messages[0]?.role).to.equal("system");
    expect(request.messages[0]?.content).to.match(/^# Tools\n/);
    const none = new PromptPipeline("text").request(HISTORY.slice(1, 2), []);
    expect(none.messages).to.deep.equal(HISTORY.slice(1, 2));
  });

  it("text: renders each history item and the tools section once", () => {
    const pipeline = new PromptPipeline("text");
    const first = pipeline.request(HISTORY, SPECS).messages;
    const second = pipeline.request(HISTORY, SPECS).messages;
    expect(second[2]).to.equal(first[2]);
    expect(second[3]).to.equal(first[3]);
  });

  it("text: reads the answer's blocks as tool calls with fresh ids", () => {
    const pipeline = new PromptPipeline("text");
    const parsed = pipeline.answer(
      answer(
        'Let me look.\n<tool_call>\n{"name":"read_file","arguments":{"path":"b.txt"}}\n</tool_call>\n<tool_call>{"name":"read_file","arguments":{"path":"c.txt"}}',
      ),
    );
    expect(parsed.content).to.equal("Let me look.");
    expect(parsed.finishReason).to.equal("tool_calls");
    expect(parsed.toolCalls.map((c) => [c.name, c.arguments])).to.deep.equal([
      ["read_file", '{"path":"b.txt"}'],
      ["read_file", '{"path":"c.txt"}'],
    ]);
    const ids = parsed.toolCalls.map((c) => c.id);
    expect(new Set(ids).size).to.equal(2);
    for (const id of ids) expect(id).to.match(/^call_[0-9a-f]{24}$/);
    // Qwen's variant too; a plain answer stays as it is.
    const qwen = pipeline.answer(
      answer("<function=read_file>\n<parameter=path>\nd.txt\n</parameter>\n</function>"),
    );
    expect(qwen.toolCalls.map((c) => c.arguments)).to.deep.equal(['{"path":"d.txt"}']);
    const plain = answer("All done: a < b and <b>bold</b>.");
    expect(pipeline.answer(plain)).to.equal(plain);
  });
});

describe("prompt: tool-call delta filter", () => {
  const run = (chunks: string[], hadCalls = true) => {
    const filter = new ToolCallDeltaFilter();
    const shown = chunks.map((c) => filter.push(c));
    const end = filter.end(hadCalls);
    return { shown, end, text: shown.join("") + end };
  };

  it("shows the text before a block and nothing from the block on", () => {
    const { shown, end } = run([
      "Let me ",
      "look.\n<to",
      "ol_call>\n{",
      '"name":"x"}',
      "</tool_call> after",
    ]);
    expect(shown).to.deep.equal(["Let me ", "look.\n", "", "", ""]);
    expect(end).to.equal("");
  });

  it("finds every opener in any case, also split over many chunks", () => {
    for (const opener of ["<TOOL_CALL>", "<tool>", '<tool name="x">', "<function=read_file>"]) {
      const chunks = ["ok ", ...opener.split(""), "{}"];
      expect(run(chunks).text, opener).to.equal("ok ");
    }
  });

  it("gives back held text that did not become a block", () => {
    expect(run(["a <b>bold</b> and <to"]).shown).to.deep.equal(["a <b>bold</b> and "]);
    expect(run(["a <b>bold</b> and <to"]).end).to.equal("<to");
    expect(run(["x <tool", "box> y"]).text).to.equal("x <toolbox> y");
    expect(run(["1 < 2", " and 3 > 2"]).text).to.equal("1 < 2 and 3 > 2");
  });

  it("gives back everything withheld when the answer had no call after all", () => {
    const prose = ["Wrap it in a <tool", " element and ", "<tool_call> tags."];
    const withCalls = run(prose);
    expect(withCalls.text).to.equal("Wrap it in a ");
    expect(run(prose, false).text).to.equal(prose.join(""));
  });

  it("keeps offsets right around characters whose lowercase form is longer", () => {
    const text = "İİİİ<TOOL_CALL>{}";
    expect(run([text]).text).to.equal("İİİİ");
  });
});

describe("prompt: session system prompt", () => {
  it("is written by a new session's first turn only, and never when empty", () => {
    const fresh = { historyLength: 0, hasSnapshot: false };
    expect(sessionSystemPrompt(fresh, DEFAULT_SYSTEM_PROMPT)).to.deep.equal({
      role: "system",
      content: DEFAULT_SYSTEM_PROMPT,
    });
    expect(sessionSystemPrompt({ historyLength: 3, hasSnapshot: false }, "x")).to.equal(null);
    expect(sessionSystemPrompt({ historyLength: 0, hasSnapshot: true }, "x")).to.equal(null);
    expect(sessionSystemPrompt(fresh, "")).to.equal(null);
  });
});
