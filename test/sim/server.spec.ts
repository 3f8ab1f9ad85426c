import { expect } from "chai";
import type OpenAI from "openai";
import { APIError } from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import { COMPACTION_INSTRUCTION_HEAD } from "../../src/context/compaction/summary-prompt.js";
import type { SimServer } from "../../src/sim/server.js";
import { SIM_REPLY_TOKENS, SIM_TOKENS_PER_MESSAGE, simTextTokens } from "../../src/sim/tokens.js";
import { client, errorBody, postChat, startSim, TOOLS, user } from "./helpers.js";

describe("sim server", () => {
  let sim: SimServer;
  let openai: OpenAI;

  before(async () => {
    sim = await startSim();
    openai = client(sim);
  });
  after(() => sim.close());

  describe("routes", () => {
    it("serves /healthz and /v1/models", async () => {
      const health = await fetch(sim.url.replace(/\/v1$/, "/healthz"));
      expect(health.status).to.equal(200);
      expect(await health.json()).to.deep.equal({ ok: true });
      const models = await openai.models.list();
      expect(models.data.map((m) => m.id)).to.deep.equal(["farm-sim-1"]);
    });

    it("answers an unknown route with 404 in OpenAI's error shape", async () => {
      const res = await fetch(`${sim.url}/embeddings`, { method: "POST", body: "{}" });
      expect(res.status).to.equal(404);
      const body = await errorBody(res);
      expect(body).to.have.nested.property("error.type", "invalid_request_error");
      expect(Object.keys(body.error)).to.deep.equal(["message", "type", "param", "code"]);
      expect(body.error.param).to.equal(null);
    });

    it("answers malformed JSON and a missing messages field with 400", async () => {
      for (const body of ["{not json", JSON.stringify({ model: "m" })]) {
        const res = await postChat(sim, body);
        expect(res.status, body).to.equal(400);
        const { error } = await errorBody(res);
        expect(error.type).to.equal("invalid_request_error");
        expect(Object.keys(error)).to.deep.equal(["message", "type", "param", "code"]);
      }
    });
  });

  describe("plain answers", () => {
    it("answers without streaming, echoing the model and counting usage", async () => {
      const completion = await openai.chat.completions.create({
        model: "my-model",
        messages: [{ role: "system", content: "be brief" }, user("How is the weather in Paris?")],
      });
      const choice = completion.choices[0];
      expect(completion.object).to.equal("chat.completion");
      expect(completion.model).to.equal("my-model");
      expect(choice?.finish_reason).to.equal("stop");
      expect(choice?.message.content).to.match(/^You asked: How is the weather in Paris\?\. /);
      expect(choice?.message.content?.trim().split(/\s+/)).to.have.length(24);
      expect(completion.usage).to.include({ completion_tokens: 24 });
      expect(completion.usage?.prompt_tokens).to.equal(
        SIM_REPLY_TOKENS +
          2 * SIM_TOKENS_PER_MESSAGE +
          simTextTokens("be brief") +
          simTextTokens("How is the weather in Paris?"),
      );
      expect(completion.usage?.total_tokens).to.equal(
        (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
      );
    });

    it("streams the same answer token by token, with role first and usage last", async () => {
      const messages = [user("Tell me a story [[sim reply_tokens=12]]")];
      const whole = await openai.chat.completions.create({ model: "m", messages });
      const stream = await openai.chat.completions.create({
        model: "m",
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const first = chunks[0];
      const last = chunks[chunks.length - 1];
      expect(first?.choices[0]?.delta.role).to.equal("assistant");
      const contentChunks = chunks.filter((c) => c.choices[0]?.delta.content);
      expect(contentChunks).to.have.length(12);
      const text = contentChunks.map((c) => c.choices[0]?.delta.content).join("");
      expect(text).to.equal(whole.choices[0]?.message.content);
      expect(chunks[chunks.length - 2]?.choices[0]?.finish_reason).to.equal("stop");
      expect(last?.choices).to.deep.equal([]);
      expect(last?.usage).to.deep.equal(whole.usage);
      expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "m")).to.equal(
        true,
      );
    });

    it("ends a raw stream with [DONE] and sends no usage chunk unless asked", async () => {
      const res = await postChat(sim, { model: "m", stream: true, messages: [user("hi")] });
      expect(res.headers.get("content-type")).to.match(/^text\/event-stream/);
      const events = (await res.text()).split("\n\n").filter((e) => e !== "");
      expect(events[events.length - 1]).to.equal("data: [DONE]");
      expect(events.every((e) => e.startsWith("data: "))).to.equal(true);
      expect(events.some((e) => e.includes('"usage"'))).to.equal(false);
    });

    it("gives the same answer to the same request", async () => {
      const request = {
        model: "m",
        messages: [user("Compare apples and pears, please [[sim reply_tokens=40]]")],
      };
      const a = await openai.chat.completions.create(request);
      const b = await openai.chat.completions.create(request);
      const other = await startSim();
      try {
        const c = await client(other).chat.completions.create(request);
        expect(b.choices[0]?.message).to.deep.equal(a.choices[0]?.message);
        expect(c.choices[0]?.message).to.deep.equal(a.choices[0]?.message);
      } finally {
        await other.close();
      }
      const different = await openai.chat.completions.create({
        ...request,
        messages: [user("Compare apples and plums, please [[sim reply_tokens=40]]")],
      });
      expect(different.choices[0]?.message.content).to.not.equal(a.choices[0]?.message.content);
    });
  });

  describe("tool calls", () => {
    it("calls list_files in round 0 and answers with the tool output in round 1", async () => {
      const messages: ChatCompletionMessageParam[] = [user("What files are in my folder?")];
      const first = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
      const call = first.choices[0]?.message.tool_calls?.[0];
      expect(first.choices[0]?.finish_reason).to.equal("tool_calls");
      if (call?.type !== "function") throw new Error("expected a function call");
      expect(call.id).to.match(/^call_/);
      expect(call.function.name).to.equal("list_files");
      expect(JSON.parse(call.function.arguments)).to.deep.equal({ path: "." });

      const output = JSON.stringify({ ok: true, data: ["README.md", "src/"] });
      messages.push(first.choices[0]?.message as ChatCompletionMessageParam, {
        role: "tool",
        tool_call_id: call.id,
        content: output,
      });
      const second = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
      expect(second.choices[0]?.finish_reason).to.equal("stop");
      expect(second.choices[0]?.message.content).to.contain(`Result of list_files: ${output}`);
    });

    it("streams a tool call the way OpenAI does", async () => {
      const stream = await openai.chat.completions.create({
        model: "m",
        messages: [user('do it [[sim tool=read_file args={"path": "docs/a b.md"}]]')],
        tools: TOOLS,
        stream: true,
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
      const [head, ...fragments] = calls;
      expect(head).to.deep.include({ index: 0, type: "function" });
      expect(head?.id).to.match(/^call_/);
      expect(head?.function).to.deep.equal({ name: "read_file", arguments: "" });
      expect(fragments.length).to.be.greaterThan(1);
      expect(fragments.every((f) => f.index === 0 && f.id === undefined)).to.equal(true);
      const args = fragments.map((f) => f.function?.arguments).join("");
      expect(JSON.parse(args)).to.deep.equal({ path: "docs/a b.md" });
      expect(chunks[chunks.length - 1]?.choices[0]?.finish_reason).to.equal("tool_calls");
    });

    it("calls a tool in rounds 0..N-1 with rounds=N, then answers", async () => {
      const messages: ChatCompletionMessageParam[] = [user("dig deep [[sim rounds=3]]")];
      const ids = new Set<string>();
      for (let round = 0; round < 3; round++) {
        const reply = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
        const call = reply.choices[0]?.message.tool_calls?.[0];
        if (call?.type !== "function") throw new Error(`round ${round}: expected a tool call`);
        expect(call.function.name).to.equal("list_files");
        ids.add(call.id);
        messages.push(reply.choices[0]?.message as ChatCompletionMessageParam, {
          role: "tool",
          tool_call_id: call.id,
          content: `{"ok":true,"data":["round${round}"]}`,
        });
      }
      const final = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
      expect(ids.size).to.equal(3);
      expect(final.choices[0]?.message.content).to.contain('["round2"]');
    });

    it("makes calls=N tool calls in one round, then answers with every result", async () => {
      const messages: ChatCompletionMessageParam[] = [
        user('fan out [[sim tool=read_file args={"path": "a.md"} calls=3]]'),
      ];
      const first = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
      const calls = first.choices[0]?.message.tool_calls ?? [];
      expect(first.choices[0]?.finish_reason).to.equal("tool_calls");
      expect(calls).to.have.length(3);
      const fns = calls.map((c) => {
        if (c.type !== "function") throw new Error("expected function calls");
        return c;
      });
      expect(new Set(fns.map((c) => c.id)).size).to.equal(3);
      for (const call of fns) {
        expect(call.id).to.match(/^call_[0-9a-f]{24}$/);
        expect(call.function.name).to.equal("read_file");
        expect(JSON.parse(call.function.arguments)).to.deep.equal({ path: "a.md" });
      }

      const stream = await openai.chat.completions.create({
        model: "m",
        messages,
        tools: TOOLS,
        stream: true,
        stream_options: { include_usage: true },
      });
      const byIndex = new Map<number, { id?: string; name: string; args: string }>();
      let usage: OpenAI.CompletionUsage | null | undefined;
      for await (const chunk of stream) {
        usage ??= chunk.usage;
        for (const part of chunk.choices[0]?.delta.tool_calls ?? []) {
          const call = byIndex.get(part.index) ?? { name: "", args: "" };
          if (part.id) {
            expect(call.id, "one opening per call").to.equal(undefined);
            call.id = part.id;
          }
          call.name += part.function?.name ?? "";
          call.args += part.function?.arguments ?? "";
          byIndex.set(part.index, call);
        }
      }
      expect([...byIndex.keys()]).to.deep.equal([0, 1, 2]);
      expect([...byIndex.values()]).to.deep.equal(
        fns.map((c) => ({ id: c.id, name: "read_file", args: c.function.arguments })),
      );
      expect(usage?.completion_tokens).to.equal(first.usage?.completion_tokens);

      messages.push(
        first.choices[0]?.message as ChatCompletionMessageParam,
        ...fns.map((c, i) => ({
          role: "tool" as const,
          tool_call_id: c.id,
          content: `{"ok":true,"data":"part ${i}"}`,
        })),
      );
      const answer = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
      expect(answer.choices[0]?.finish_reason).to.equal("stop");
      const text = answer.choices[0]?.message.content ?? "";
      for (let i = 0; i < 3; i++) expect(text).to.contain(`{"ok":true,"data":"part ${i}"}`);
    });

    it("explains instead of calling a tool that was not offered", async () => {
      const reply = await openai.chat.completions.create({
        model: "m",
        messages: [user("list the files")],
        tools: TOOLS.filter((t) => t.type === "function" && t.function.name !== "list_files"),
      });
      expect(reply.choices[0]?.message.tool_calls).to.equal(undefined);
      expect(reply.choices[0]?.message.content).to.contain(
        "list_files: that tool is not available",
      );
    });
  });

  describe("context window", () => {
    it("refuses a prompt above the window with context_length_exceeded", async () => {
      const small = await startSim({ contextWindowTokens: 100 });
      try {
        const error = await client(small)
          .chat.completions.create({ model: "m", messages: [user("word ".repeat(200))] })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(error).to.be.instanceOf(APIError);
        const apiError = error as APIError;
        expect(apiError.status).to.equal(400);
        expect(apiError.code).to.equal("context_length_exceeded");
        expect(apiError.param).to.equal("messages");
        expect(apiError.type).to.equal("invalid_request_error");
        expect(apiError.message).to.contain("maximum context length is 100 tokens");
        const prompt =
          SIM_REPLY_TOKENS + SIM_TOKENS_PER_MESSAGE + simTextTokens("word ".repeat(200));
        expect(prompt).to.be.greaterThan(100);
        expect(apiError.message).to.contain(`resulted in ${prompt} tokens`);
        const fits = await client(small).chat.completions.create({
          model: "m",
          messages: [user("word ".repeat(50))],
        });
        expect(fits.choices[0]?.finish_reason).to.equal("stop");
      } finally {
        await small.close();
      }
    });
  });

  describe("compaction summary requests", () => {
    /** A farm compaction's summary request, quoting a transcript with `line` in it. */
    const summaryRequest = (line: string) => [
      { role: "system" as const, content: "You write hand-off summaries." },
      user(
        `<transcript>\n[user] ${line}\n[assistant] ok\n</transcript>\n\n${COMPACTION_INSTRUCTION_HEAD}\nSummarise.`,
      ),
    ];

    it("answers with a structured summary, ignoring the session's own directives", async () => {
      const reply = await openai.chat.completions.create({
        model: "m",
        messages: summaryRequest("[[sim fault=500 tool=list_files]] build the app"),
      });
      const content = reply.choices[0]?.message.content ?? "";
      expect(content).to.match(/^## Goal/);
      expect(content).to.contain("build the app");
      expect(reply.choices[0]?.message.tool_calls ?? []).to.deep.equal([]);
    });

    it("applies summary_fault to the summary request only", async () => {
      const failing = await client(sim, { maxRetries: 0 })
        .chat.completions.create({
          model: "m",
          messages: summaryRequest("[[sim summary_fault=500]] build the app"),
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect((failing as APIError).status).to.equal(500);
      const garbage = await openai.chat.completions.create({
        model: "m",
        messages: summaryRequest("[[sim summary_fault=garbage]] build the app"),
      });
      expect(garbage.choices[0]?.message.content ?? "").to.equal("");
      // In a turn's own request the directive does nothing.
      const turn = await openai.chat.completions.create({
        model: "m",
        messages: [user("[[sim summary_fault=500]] hello there")],
      });
      expect(turn.choices[0]?.finish_reason).to.equal("stop");
    });
  });
});
