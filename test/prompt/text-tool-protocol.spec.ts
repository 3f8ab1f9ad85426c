/**
 * wunder's text tool-call protocol: the tools prompt, the tolerant call parser (every accepted
 * variant, broken and cut-off input), the tool_response text, and rendering round trips.
 */
import { expect } from "chai";
import type { ToolSpec } from "../../src/llm/chat-stream.js";
import { parseToolArguments } from "../../src/llm/tool-call-repair.js";
import { parseTextToolCalls } from "../../src/prompt/text-tool-protocol.js";
import {
  renderToolCall,
  renderToolResponse,
  renderToolsPrompt,
  TOOL_CALL_STOP,
  TOOL_RESPONSE_PREFIX,
} from "../../src/prompt/text-tool-render.js";

const spec = (
  name: string,
  description: string,
  parameters: Record<string, unknown>,
): ToolSpec => ({
  type: "function",
  function: { name, description, parameters },
});

const READ_FILE = spec("read_file", "Reads a file.", {
  type: "object",
  properties: { path: { type: "string", description: "relative path" } },
  required: ["path"],
});
const LIST_FILES = spec("list_files", "Lists a folder.", {
  type: "object",
  properties: { dir: { type: "string" }, depth: { type: "integer", minimum: 0 } },
});

/** Only the calls, with arguments parsed back into values. */
function callsOf(text: string): { name: string; args: unknown }[] {
  return parseTextToolCalls(text).calls.map((c) => ({
    name: c.name,
    args: JSON.parse(c.arguments),
  }));
}

describe("text tool protocol", () => {
  describe("renderToolsPrompt", () => {
    it("lists one JSON spec per line inside <tools>", () => {
      const prompt = renderToolsPrompt([READ_FILE, LIST_FILES]);
      const lines = prompt.split("\n");
      const open = lines.indexOf("<tools>");
      const close = lines.indexOf("</tools>");
      expect(close - open).to.equal(3);
      const first = JSON.parse(lines[open + 1] ?? "");
      expect(first).to.deep.equal({
        name: "read_file",
        description: "Reads a file.",
        parameters: READ_FILE.function.parameters,
      });
      expect(Object.keys(first)).to.deep.equal(["name", "description", "parameters"]);
      expect(JSON.parse(lines[open + 2] ?? "").name).to.equal("list_files");
    });

    it("explains the call format and the tool_response prefix", () => {
      const prompt = renderToolsPrompt([READ_FILE]);
      expect(prompt).to.include("<tool_call>");
      expect(prompt).to.include("</tool_call>");
      expect(prompt).to.include('"name"');
      expect(prompt).to.include('"arguments"');
      expect(prompt).to.include('"tool_response: "');
      expect(prompt).to.match(/several/i);
    });

    it("its own example call parses", () => {
      const prompt = renderToolsPrompt([READ_FILE]);
      const { calls, malformed } = parseTextToolCalls(prompt.slice(prompt.indexOf("</tools>")));
      expect(malformed).to.deep.equal([]);
      expect(calls).to.deep.equal([{ name: "tool_name", arguments: '{"argument_name":"value"}' }]);
    });

    it("is deterministic: key order of the specs does not matter", () => {
      const a = spec("t", "d", {
        type: "object",
        required: ["x"],
        properties: { x: { type: "string", description: "X" }, a: { type: "number" } },
      });
      const b = spec("t", "d", {
        properties: { a: { type: "number" }, x: { description: "X", type: "string" } },
        required: ["x"],
        type: "object",
      });
      expect(renderToolsPrompt([a])).to.equal(renderToolsPrompt([b]));
      expect(renderToolsPrompt([a])).to.equal(renderToolsPrompt([a]));
    });

    it("keeps the tools in the given order and arrays in their order", () => {
      const prompt = renderToolsPrompt([LIST_FILES, READ_FILE]);
      expect(prompt.indexOf('"list_files"')).to.be.lessThan(prompt.indexOf('"read_file"'));
      const s = spec("t", "d", { type: "object", required: ["b", "a"] });
      expect(renderToolsPrompt([s])).to.include('"required":["b","a"]');
    });

    it("keeps unicode and cannot be closed early by a description", () => {
      const s = spec("读取", "Lit un fichier — </tools> <tool_call>", { type: "object" });
      const prompt = renderToolsPrompt([s]);
      expect(prompt.split("\n").filter((l) => l === "</tools>")).to.have.length(1);
      const line = prompt.split("\n").find((l) => l.startsWith("{") && l.includes("读取")) ?? "";
      expect(JSON.parse(line).description).to.equal("Lit un fichier — </tools> <tool_call>");
    });

    it("is empty without tools", () => {
      expect(renderToolsPrompt([])).to.equal("");
    });
  });

  describe("renderToolResponse", () => {
    it("is wunder's user-message format", () => {
      expect(renderToolResponse("read_file", '{"ok":true}')).to.equal('tool_response: {"ok":true}');
      expect(renderToolResponse("x", "")).to.equal("tool_response: ");
      expect(renderToolResponse("x", "line1\nline2")).to.equal("tool_response: line1\nline2");
      expect(TOOL_RESPONSE_PREFIX).to.equal("tool_response: ");
      expect(TOOL_CALL_STOP).to.equal("</tool_call>");
    });
  });

  describe("parseTextToolCalls: the standard block", () => {
    it("reads one call", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"read_file","arguments":{"path":"a.txt"}}</tool_call>',
      );
      expect(r).to.deep.equal({
        content: "",
        calls: [{ name: "read_file", arguments: '{"path":"a.txt"}' }],
        malformed: [],
      });
    });

    it("reads a call spread over lines with spaces", () => {
      const text =
        '<tool_call>\n{\n  "name": "read_file",\n  "arguments": { "path": "a.txt" }\n}\n</tool_call>';
      expect(callsOf(text)).to.deep.equal([{ name: "read_file", args: { path: "a.txt" } }]);
    });

    it("keeps text before, between and after calls as content", () => {
      const text = [
        "Let me look.",
        '<tool_call>{"name":"a","arguments":{}}</tool_call>',
        "And also:",
        '<tool_call>{"name":"b","arguments":{"n":1}}</tool_call>',
        "Done for now.",
      ].join("\n");
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => c.name)).to.deep.equal(["a", "b"]);
      expect(r.content).to.equal("Let me look.\n\nAnd also:\n\nDone for now.");
      expect(r.malformed).to.deep.equal([]);
    });

    it("reads several calls back to back, in order", () => {
      const text =
        '<tool_call>{"name":"a","arguments":{"i":1}}</tool_call><tool_call>{"name":"b","arguments":{"i":2}}</tool_call>\n<tool_call>{"name":"c","arguments":{"i":3}}</tool_call>';
      expect(callsOf(text)).to.deep.equal([
        { name: "a", args: { i: 1 } },
        { name: "b", args: { i: 2 } },
        { name: "c", args: { i: 3 } },
      ]);
      expect(parseTextToolCalls(text).content).to.equal("");
    });

    it("accepts tag case, attributes and spaces in the close tag", () => {
      const text = '<TOOL_CALL id="1">{"name":"a","arguments":{}}</Tool_Call >rest';
      const r = parseTextToolCalls(text);
      expect(r.calls).to.deep.equal([{ name: "a", arguments: "{}" }]);
      expect(r.content).to.equal("rest");
    });

    it("reads <tool>{json}</tool>", () => {
      const r = parseTextToolCalls('ok <tool>{"name":"a","arguments":{"x":true}}</tool> end');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"x":true}' }]);
      expect(r.content).to.equal("ok\n\nend");
    });

    it("does not take <tools> or <tool-like> tags for calls", () => {
      const text = "<tools>\n{}\n</tools> and <toolbox>x</toolbox>";
      expect(parseTextToolCalls(text)).to.deep.equal({ content: text, calls: [], malformed: [] });
    });

    it("trims the name", () => {
      expect(
        parseTextToolCalls('<tool_call>{"name":"  a ","arguments":{}}</tool_call>').calls[0]?.name,
      ).to.equal("a");
    });

    it("normalises object arguments to compact JSON, keeping key order", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"a","arguments":{ "z": 1, "a": [1, 2] }}</tool_call>',
      );
      expect(r.calls[0]?.arguments).to.equal('{"z":1,"a":[1,2]}');
    });

    it("reads the name after the arguments", () => {
      expect(callsOf('<tool_call>{"arguments":{"p":1},"name":"a"}</tool_call>')).to.deep.equal([
        { name: "a", args: { p: 1 } },
      ]);
    });
  });

  describe("parseTextToolCalls: arguments", () => {
    it("empty, missing and null arguments are {}", () => {
      const text = [
        '<tool_call>{"name":"a","arguments":{}}</tool_call>',
        '<tool_call>{"name":"b"}</tool_call>',
        '<tool_call>{"name":"c","arguments":null}</tool_call>',
        '<tool_call>{"name":"d","arguments":""}</tool_call>',
        '<tool_call>{"name":"e","arguments":"  "}</tool_call>',
      ].join("");
      expect(parseTextToolCalls(text).calls.map((c) => c.arguments)).to.deep.equal([
        "{}",
        "{}",
        "{}",
        "{}",
        "{}",
      ]);
    });

    it("decodes string-encoded arguments", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"a","arguments":"{\\"a\\":1,\\"b\\":\\"x\\"}"}</tool_call>',
      );
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"a":1,"b":"x"}' }]);
    });

    it("decodes string-encoded arguments inside a code fence", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"a","arguments":"```json\\n{\\"a\\":1}\\n```"}</tool_call>',
      );
      expect(r.calls[0]?.arguments).to.equal('{"a":1}');
    });

    it("keeps a broken string-encoded argument text as it is, for the repair step", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"a","arguments":"{\\"a\\":1,}"}</tool_call>',
      );
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"a":1,}' }]);
      expect(r.malformed).to.deep.equal([]);
      const repaired = parseToolArguments(r.calls[0]?.arguments ?? "");
      expect(repaired).to.deep.include({ ok: true, value: { a: 1 } });
    });

    it('takes "parameters" as an alias of "arguments"', () => {
      expect(callsOf('<tool_call>{"name":"a","parameters":{"p":"v"}}</tool_call>')).to.deep.equal([
        { name: "a", args: { p: "v" } },
      ]);
    });

    it('prefers "arguments" when both are there', () => {
      expect(
        callsOf('<tool_call>{"name":"a","parameters":{"p":1},"arguments":{"q":2}}</tool_call>'),
      ).to.deep.equal([{ name: "a", args: { q: 2 } }]);
    });

    it("passes a non-object value on as JSON text (the orchestrator reports it)", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a","arguments":[1,2]}</tool_call>');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: "[1,2]" }]);
      expect(parseToolArguments("[1,2]").ok).to.equal(false);
    });

    it("reads nested braces and brackets", () => {
      const args = { a: { b: { c: [1, { d: [] }] } }, e: "{[}]" };
      expect(
        callsOf(`<tool_call>{"name":"a","arguments":${JSON.stringify(args)}}</tool_call>`),
      ).to.deep.equal([{ name: "a", args }]);
    });

    it("does not end a call at </tool_call> inside a JSON string", () => {
      const args = { content: "write </tool_call> and <tool_call> here", n: "}" };
      const text = `before <tool_call>{"name":"write","arguments":${JSON.stringify(args)}}</tool_call> after`;
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => JSON.parse(c.arguments))).to.deep.equal([args]);
      expect(r.content).to.equal("before\n\nafter");
      expect(r.malformed).to.deep.equal([]);
    });

    it("handles escaped quotes and backslashes in strings", () => {
      const args = { s: 'say "hi" \\ </tool_call>', t: "\\" };
      expect(
        callsOf(`<tool_call>{"name":"a","arguments":${JSON.stringify(args)}}</tool_call>`),
      ).to.deep.equal([{ name: "a", args }]);
    });

    it("keeps unicode in names, arguments and content", () => {
      const text =
        '好的，我来读取。\n<tool_call>{"name":"读取文件","arguments":{"路径":"文档/说明 🚀.md"}}</tool_call>\n完成 ✅';
      const r = parseTextToolCalls(text);
      expect(r.calls).to.deep.equal([
        { name: "读取文件", arguments: '{"路径":"文档/说明 🚀.md"}' },
      ]);
      expect(r.content).to.equal("好的，我来读取。\n\n完成 ✅");
    });

    it("reads unicode escapes", () => {
      expect(
        callsOf('<tool_call>{"name":"a","arguments":{"s":"\\u00e9\\ud83d\\ude80"}}</tool_call>'),
      ).to.deep.equal([{ name: "a", args: { s: "é🚀" } }]);
    });
  });

  describe("parseTextToolCalls: other shapes", () => {
    it("reads code-fenced JSON inside the block", () => {
      const text = '<tool_call>\n```json\n{"name":"a","arguments":{"x":1}}\n```\n</tool_call>';
      const r = parseTextToolCalls(text);
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"x":1}' }]);
      expect(r.content).to.equal("");
    });

    it("reads a fence without a language or newlines", () => {
      expect(callsOf('<tool_call>```{"name":"a","arguments":{}}```</tool_call>')).to.deep.equal([
        { name: "a", args: {} },
      ]);
    });

    it("drops a code fence around a whole block from the content", () => {
      const text =
        'Calling:\n```xml\n<tool_call>{"name":"a","arguments":{}}</tool_call>\n```\nThen more.';
      const r = parseTextToolCalls(text);
      expect(r.calls).to.have.length(1);
      expect(r.content).to.equal("Calling:\n\nThen more.");
    });

    it("reads <name>/<arguments> children", () => {
      const text =
        '<tool_call>\n<name>read_file</name>\n<arguments>{"path":"a.txt"}</arguments>\n</tool_call>';
      expect(parseTextToolCalls(text)).to.deep.equal({
        content: "",
        calls: [{ name: "read_file", arguments: '{"path":"a.txt"}' }],
        malformed: [],
      });
    });

    it("reads children with <parameters>, no arguments, or a fenced argument object", () => {
      expect(
        callsOf('<tool_call><name>a</name><parameters>{"p":1}</parameters></tool_call>'),
      ).to.deep.equal([{ name: "a", args: { p: 1 } }]);
      expect(callsOf("<tool_call><name> b </name></tool_call>")).to.deep.equal([
        { name: "b", args: {} },
      ]);
      expect(
        callsOf(
          '<tool_call><name>c</name><arguments>\n```json\n{"q":2}\n```\n</arguments></tool_call>',
        ),
      ).to.deep.equal([{ name: "c", args: { q: 2 } }]);
    });

    it("reads children whose arguments hold close tags inside strings", () => {
      const args = { s: "</arguments></tool_call>" };
      const text = `<tool_call><name>a</name><arguments>${JSON.stringify(args)}</arguments></tool_call>tail`;
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => JSON.parse(c.arguments))).to.deep.equal([args]);
      expect(r.content).to.equal("tail");
    });

    it("keeps broken children arguments as they are", () => {
      const r = parseTextToolCalls(
        '<tool_call><name>a</name><arguments>{"x":1,}</arguments></tool_call>',
      );
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"x":1,}' }]);
    });

    it("reads Qwen-style <function=NAME><parameter=K>v</parameter></function>", () => {
      const text = [
        "<tool_call>",
        "<function=write_file>",
        "<parameter=path>",
        "src/a.ts",
        "</parameter>",
        "<parameter=content>",
        "line 1",
        "line 2",
        "</parameter>",
        "</function>",
        "</tool_call>",
      ].join("\n");
      expect(parseTextToolCalls(text)).to.deep.equal({
        content: "",
        calls: [
          {
            name: "write_file",
            arguments: JSON.stringify({ path: "src/a.ts", content: "line 1\nline 2" }),
          },
        ],
        malformed: [],
      });
    });

    it("parses Qwen parameter values as JSON when they parse, else keeps strings", () => {
      const text =
        "<tool_call><function=f><parameter=n>42</parameter><parameter=b>true</parameter>" +
        '<parameter=o>{"k":[1,2]}</parameter><parameter=s>"quoted"</parameter>' +
        "<parameter=t>plain text</parameter><parameter=z>007</parameter><parameter=e></parameter>" +
        "</function></tool_call>";
      expect(callsOf(text)).to.deep.equal([
        {
          name: "f",
          args: { n: 42, b: true, o: { k: [1, 2] }, s: "quoted", t: "plain text", z: "007", e: "" },
        },
      ]);
    });

    it("reads a bare Qwen function block, without <tool_call>", () => {
      const text =
        "I will list.\n<function=list_files>\n<parameter=dir>\nsrc\n</parameter>\n</function>\nWaiting.";
      const r = parseTextToolCalls(text);
      expect(r.calls).to.deep.equal([{ name: "list_files", arguments: '{"dir":"src"}' }]);
      expect(r.content).to.equal("I will list.\n\nWaiting.");
    });

    it("reads Qwen code with braces and several functions in one block", () => {
      const text =
        "<tool_call><function=a><parameter=code>if (x) {\n  y();\n</parameter></function>" +
        "<function=b></function></tool_call> end";
      const r = parseTextToolCalls(text);
      expect(r.calls).to.deep.equal([
        { name: "a", arguments: JSON.stringify({ code: "if (x) {\n  y();" }) },
        { name: "b", arguments: "{}" },
      ]);
      expect(r.content).to.equal("end");
    });

    it("reads Qwen with unclosed parameters and function, cut at the end", () => {
      const text = "<tool_call>\n<function=f>\n<parameter=a>\n1\n<parameter=b>\nhello";
      expect(callsOf(text)).to.deep.equal([{ name: "f", args: { a: 1, b: "hello" } }]);
    });

    it("keeps a __proto__ parameter as plain data", () => {
      const r = parseTextToolCalls(
        '<function=f><parameter=__proto__>{"x":1}</parameter></function>',
      );
      expect(r.calls[0]?.arguments).to.equal('{"__proto__":{"x":1}}');
    });

    it("reads the OpenAI tool_calls shape inside a block", () => {
      const text =
        '<tool_call>{"type":"function","function":{"name":"a","arguments":"{\\"x\\":1}"}}</tool_call>';
      expect(callsOf(text)).to.deep.equal([{ name: "a", args: { x: 1 } }]);
    });

    it("reads several JSON calls in one block, as an array or one after another", () => {
      expect(
        callsOf(
          '<tool_call>[{"name":"a","arguments":{}},{"name":"b","arguments":{"i":2}}]</tool_call>',
        ),
      ).to.deep.equal([
        { name: "a", args: {} },
        { name: "b", args: { i: 2 } },
      ]);
      expect(
        callsOf('<tool_call>{"name":"a","arguments":{}}\n{"name":"b","arguments":{}}</tool_call>'),
      ).to.deep.equal([
        { name: "a", args: {} },
        { name: "b", args: {} },
      ]);
    });
  });

  describe("parseTextToolCalls: unclosed blocks", () => {
    it("reads an unclosed <tool_call> at the end (stopped at </tool_call>)", () => {
      const r = parseTextToolCalls(
        'Reading it.\n<tool_call>\n{"name":"read_file","arguments":{"path":"a"}}\n',
      );
      expect(r).to.deep.equal({
        content: "Reading it.",
        calls: [{ name: "read_file", arguments: '{"path":"a"}' }],
        malformed: [],
      });
    });

    it("ends an unclosed block at the next block", () => {
      const text =
        '<tool_call>{"name":"a","arguments":{}}\n<tool_call>{"name":"b","arguments":{}}</tool_call>';
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => c.name)).to.deep.equal(["a", "b"]);
      expect(r.content).to.equal("");
    });

    it("keeps prose after an unclosed complete call as content", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a","arguments":{}}\nI will wait for it.');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: "{}" }]);
      expect(r.content).to.equal("I will wait for it.");
    });

    it("keeps an unclosed fenced call's closing fence out of the content", () => {
      const r = parseTextToolCalls('<tool_call>\n```json\n{"name":"a","arguments":{}}\n```\nOk.');
      expect(r.calls).to.have.length(1);
      expect(r.content).to.equal("Ok.");
    });

    it("keeps the arguments of a call cut mid-way, when the name is readable", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"write","arguments":{"path":"a.txt","text":"hel',
      );
      expect(r.calls).to.deep.equal([{ name: "write", arguments: '{"path":"a.txt","text":"hel' }]);
      expect(r.malformed).to.deep.equal([]);
      expect(parseToolArguments(r.calls[0]?.arguments ?? "").ok).to.equal(false);
    });

    it("recovers arguments complete but with the outer object cut", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a","arguments":{"x":{"y":1}}');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"x":{"y":1}}' }]);
    });

    it("sends a block cut before its arguments to malformed", () => {
      const text = 'Hi <tool_call>{"name":"a"';
      expect(parseTextToolCalls(text)).to.deep.equal({
        content: "Hi",
        calls: [],
        malformed: ['<tool_call>{"name":"a"'],
      });
    });

    it("sends an empty or bare <tool_call> to malformed", () => {
      expect(parseTextToolCalls("text <tool_call>")).to.deep.equal({
        content: "text",
        calls: [],
        malformed: ["<tool_call>"],
      });
      expect(parseTextToolCalls("<tool_call>  </tool_call>").malformed).to.deep.equal([
        "<tool_call>  </tool_call>",
      ]);
    });
  });

  describe("parseTextToolCalls: malformed input", () => {
    it("keeps a call whose JSON has a trailing comma, for the repair step", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a","arguments":{"x":1,},}</tool_call>');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"x":1,}' }]);
      expect(r.malformed).to.deep.equal([]);
    });

    it("keeps a call with single-quoted (Python-ish) arguments as raw text", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a","arguments":{\'x\': True}}</tool_call>');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: "{'x': True}" }]);
    });

    it("keeps a call whose outer JSON is broken but arguments are fine", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a" "arguments":{"x":1}}</tool_call>');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: '{"x":1}' }]);
    });

    it("keeps a bare broken value after the arguments key", () => {
      const r = parseTextToolCalls('<tool_call>{"name":"a","arguments": path=a.txt}</tool_call>');
      expect(r.calls).to.deep.equal([{ name: "a", arguments: "path=a.txt" }]);
    });

    it("sends a call without a readable name to malformed, and never throws", () => {
      const bad = [
        '<tool_call>{"arguments":{"x":1}}</tool_call>',
        '<tool_call>{"name":"","arguments":{}}</tool_call>',
        '<tool_call>{"name":42,"arguments":{}}</tool_call>',
        "<tool_call>{name: a, arguments: {}}</tool_call>",
        "<tool_call>not json at all</tool_call>",
        "<tool_call>[]</tool_call>",
        "<tool_call>{{{{</tool_call>",
        "<tool_call>}}}]]]</tool_call>",
        '<tool_call>"just a string"</tool_call>',
        "<tool_call><function=>x</function></tool_call>",
      ];
      for (const text of bad) {
        const r = parseTextToolCalls(`a ${text} b`);
        expect(r.calls, text).to.deep.equal([]);
        expect(r.malformed, text).to.deep.equal([text]);
        expect(r.content, text).to.equal("a\n\nb");
      }
    });

    it("keeps good calls next to a malformed one", () => {
      const text =
        '<tool_call>{"name":"a","arguments":{}}</tool_call>\n<tool_call>{oops}</tool_call>\n<tool_call>{"name":"c","arguments":{}}</tool_call>';
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => c.name)).to.deep.equal(["a", "c"]);
      expect(r.malformed).to.deep.equal(["<tool_call>{oops}</tool_call>"]);
    });

    it("reports a block once when part of an array is not a call", () => {
      const text = '<tool_call>[{"name":"a","arguments":{}}, 5]</tool_call>';
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => c.name)).to.deep.equal(["a"]);
      expect(r.malformed).to.deep.equal([text]);
    });

    it("ignores prose after a readable call inside the block", () => {
      const r = parseTextToolCalls(
        '<tool_call>{"name":"a","arguments":{}} (this reads it)</tool_call>x',
      );
      expect(r.calls).to.deep.equal([{ name: "a", arguments: "{}" }]);
      expect(r.malformed).to.deep.equal([]);
      expect(r.content).to.equal("x");
    });

    it("survives random and hostile input without throwing", () => {
      const pieces = [
        "<tool_call>",
        "</tool_call>",
        "<tool>",
        "</tool>",
        "{",
        "}",
        "[",
        "]",
        '"',
        "\\",
        "<function=f>",
        "</function>",
        "<parameter=p>",
        "</parameter>",
        "<name>",
        "</name>",
        "<arguments>",
        "```",
        "x",
        "\n",
        ":",
        ",",
        '"name"',
        '"arguments"',
      ];
      let seed = 7;
      const rand = () => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed / 2147483648;
      };
      for (let n = 0; n < 500; n++) {
        let text = "";
        const len = Math.floor(rand() * 40);
        for (let k = 0; k < len; k++) text += pieces[Math.floor(rand() * pieces.length)];
        const r = parseTextToolCalls(text);
        expect(r.content).to.be.a("string");
        for (const c of r.calls) {
          expect(c.name).to.be.a("string").and.not.equal("");
          expect(c.arguments).to.be.a("string").and.not.equal("");
        }
      }
    });

    it("stays fast on long hostile input", () => {
      const start = Date.now();
      parseTextToolCalls(`<tool_call>${"{}".repeat(50_000)}`);
      parseTextToolCalls(`<tool_call>${"{".repeat(50_000)}`);
      parseTextToolCalls("<tool_call>".repeat(20_000));
      parseTextToolCalls(`<tool_call>{"name":"a","arguments":{"s":"${"x".repeat(200_000)}`);
      expect(Date.now() - start).to.be.lessThan(3000);
    });
  });

  describe("parseTextToolCalls: no calls", () => {
    it("returns the text unchanged", () => {
      for (const text of [
        "",
        "   ",
        "  Just an answer.\n\nWith paragraphs.  ",
        'Some JSON: {"name":"a","arguments":{}}',
        '```json\n{"a":1}\n```',
        "a < b > c and </tool_call> alone",
        "function(x) { return x; } <parameter=x>",
      ]) {
        expect(parseTextToolCalls(text), JSON.stringify(text)).to.deep.equal({
          content: text,
          calls: [],
          malformed: [],
        });
      }
    });
  });

  describe("round trip", () => {
    const cases: { name: string; arguments: string }[] = [
      { name: "read_file", arguments: '{"path":"a.txt"}' },
      { name: "empty", arguments: "{}" },
      { name: "nested", arguments: '{"a":{"b":[1,{"c":null}]},"d":"</tool_call> {["}' },
      { name: "写入", arguments: '{"内容":"多行\\n文本 🚀","n":-1.5e3}' },
      { name: "broken", arguments: '{"x":1,' },
    ];

    it("renderToolCall output parses back to the same call", () => {
      for (const call of cases) {
        const r = parseTextToolCalls(renderToolCall(call));
        expect(r.malformed, call.name).to.deep.equal([]);
        expect(r.content, call.name).to.equal("");
        expect(r.calls, call.name).to.have.length(1);
        expect(r.calls[0]?.name).to.equal(call.name);
        if (call.name === "broken") expect(r.calls[0]?.arguments).to.equal(call.arguments);
        else
          expect(JSON.parse(r.calls[0]?.arguments ?? "")).to.deep.equal(JSON.parse(call.arguments));
      }
    });

    it("renders in the format the prompt teaches", () => {
      const text = renderToolCall({ name: "a", arguments: '{"x":1}' });
      expect(text).to.equal('<tool_call>\n{"name":"a","arguments":{"x":1}}\n</tool_call>');
    });

    it("several rendered calls with prose around them parse back in order", () => {
      const text = ["Step one.", ...cases.map(renderToolCall), "Waiting."].join("\n");
      const r = parseTextToolCalls(text);
      expect(r.calls.map((c) => c.name)).to.deep.equal(cases.map((c) => c.name));
      expect(r.content).to.equal("Step one.\n\nWaiting.");
    });

    it("a rendered call cut by the stop sequence still parses", () => {
      const text = renderToolCall({ name: "a", arguments: '{"x":"y"}' });
      const cut = text.slice(0, text.indexOf(TOOL_CALL_STOP));
      expect(parseTextToolCalls(cut).calls).to.deep.equal([{ name: "a", arguments: '{"x":"y"}' }]);
    });
  });
});
