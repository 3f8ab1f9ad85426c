import { expect } from "chai";
import { APIConnectionTimeoutError, APIError, InternalServerError, RateLimitError } from "openai";
import type { ChatCompletionMessageParam } from "openai/resources/chat/completions";
import type { SimServer } from "../../src/sim/server.js";
import { client, errorBody, postChat, startSim, TOOLS, user } from "./helpers.js";

describe("sim faults over HTTP", () => {
  let sim: SimServer;

  before(async () => {
    sim = await startSim();
  });
  after(() => sim.close());

  it("429 with Retry-After, then success once fault_times is spent", async () => {
    const request = {
      model: "m",
      messages: [user("hello [[sim fault=429 fault_times=1 retry_after_s=3]]")],
    };
    const limited = await postChat(sim, request);
    expect(limited.status).to.equal(429);
    expect(limited.headers.get("retry-after")).to.equal("3");
    expect(await limited.json()).to.deep.equal({
      error: {
        message: "Rate limit reached for requests",
        type: "requests",
        param: null,
        code: "rate_limit_exceeded",
      },
    });
    const retried = await postChat(sim, request);
    expect(retried.status).to.equal(200);
  });

  it("lets the openai client retry a 429 to success", async () => {
    const request = {
      model: "m",
      messages: [user("again [[sim fault=429 fault_times=2 retry_after_s=0]]")],
    };
    const error = await client(sim)
      .chat.completions.create(request)
      .catch((err: unknown) => err);
    expect(error).to.be.instanceOf(RateLimitError);
    const completion = await client(sim, { maxRetries: 1 }).chat.completions.create(request);
    expect(completion.choices[0]?.message.content).to.match(/^You asked: again\./);
  });

  it("500 in OpenAI's server_error shape, on every request without fault_times", async () => {
    const request = { model: "m", messages: [user("boom [[sim fault=500]]")] };
    for (let i = 0; i < 2; i++) {
      const res = await postChat(sim, request);
      expect(res.status).to.equal(500);
      expect(await res.json()).to.deep.equal({
        error: {
          message: "The server had an error while processing your request.",
          type: "server_error",
          param: null,
          code: null,
        },
      });
    }
    const error = await client(sim)
      .chat.completions.create(request)
      .catch((err: unknown) => err);
    expect(error).to.be.instanceOf(InternalServerError);
  });

  it("hang: nothing comes back until the client gives up, and the server stays healthy", async () => {
    const openai = client(sim, { timeout: 300 });
    for (const stream of [false, true]) {
      const error = await openai.chat.completions
        .create({ model: "m", stream, messages: [user("wait [[sim fault=hang]]")] })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(error, `stream=${stream}`).to.be.instanceOf(APIConnectionTimeoutError);
    }
    const health = await fetch(sim.url.replace(/\/v1$/, "/healthz"));
    expect(health.status).to.equal(200);
    const ok = await openai.chat.completions.create({
      model: "m",
      messages: [user("still there?")],
    });
    expect(ok.choices[0]?.finish_reason).to.equal("stop");
  });

  it("cut: success headers, then the connection drops before any body, until fault_times is spent", async () => {
    for (const stream of [true, false]) {
      const request = {
        model: "m",
        stream,
        messages: [user(`cut me ${stream} [[sim fault=cut fault_times=1]]`)],
      };
      const cut = await postChat(sim, request);
      expect(cut.status).to.equal(200);
      expect(cut.headers.get("content-type")).to.match(
        stream ? /^text\/event-stream/ : /^application\/json/,
      );
      const body = await cut.text().then(
        (text) => ({ text }),
        (err: unknown) => ({ err }),
      );
      expect(body, `stream=${stream}`).to.have.property("err");

      const retried = await postChat(sim, request);
      expect(retried.status).to.equal(200);
      expect(await retried.text()).to.contain(stream ? "data: [DONE]" : "You asked: cut me false.");
    }
  });

  it("cut: the openai client sees a connection error on the stream", async () => {
    const error = await (async () => {
      const stream = await client(sim).chat.completions.create({
        model: "m",
        stream: true,
        messages: [user("again [[sim fault=cut]]")],
      });
      for await (const _chunk of stream) {
        // No chunk arrives.
      }
    })().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).to.be.instanceOf(Error);
    expect(error).to.not.be.instanceOf(APIError);
  });

  it("broken_tool_json breaks only the first of several calls", async () => {
    const reply = await client(sim).chat.completions.create({
      model: "m",
      messages: [user("list my files [[sim fault=broken_tool_json calls=3]]")],
      tools: TOOLS,
    });
    const args = (reply.choices[0]?.message.tool_calls ?? []).map((c) =>
      c.type === "function" ? c.function.arguments : "",
    );
    expect(args).to.have.length(3);
    expect(() => JSON.parse(args[0] ?? "")).to.throw(SyntaxError);
    expect(JSON.parse(args[1] ?? "")).to.deep.equal({ path: "." });
    expect(JSON.parse(args[2] ?? "")).to.deep.equal({ path: "." });
  });

  it("broken_tool_json cuts the arguments, and the model's retry succeeds", async () => {
    const openai = client(sim);
    const messages: ChatCompletionMessageParam[] = [
      user("list my files [[sim fault=broken_tool_json fault_times=1]]"),
    ];
    const broken = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
    const call = broken.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("expected a function call");
    expect(call.function.name).to.equal("list_files");
    expect(call.function.arguments).to.not.equal("");
    expect(() => JSON.parse(call.function.arguments)).to.throw(SyntaxError);

    messages.push(broken.choices[0]?.message as ChatCompletionMessageParam, {
      role: "tool",
      tool_call_id: call.id,
      content: '{"ok":false,"error":"arguments are not valid JSON"}',
    });
    const retry = await openai.chat.completions.create({ model: "m", messages, tools: TOOLS });
    const retryCall = retry.choices[0]?.message.tool_calls?.[0];
    if (retryCall?.type !== "function") throw new Error("expected a retried function call");
    expect(JSON.parse(retryCall.function.arguments)).to.deep.equal({ path: "." });
  });

  it("broken_tool_json also breaks streamed arguments, and leaves text answers alone", async () => {
    const stream = await client(sim).chat.completions.create({
      model: "m",
      messages: [user("show the folder [[sim fault=broken_tool_json]]")],
      tools: TOOLS,
      stream: true,
    });
    let args = "";
    for await (const chunk of stream) {
      for (const call of chunk.choices[0]?.delta.tool_calls ?? [])
        args += call.function?.arguments ?? "";
    }
    expect(args).to.not.equal("");
    expect(() => JSON.parse(args)).to.throw(SyntaxError);

    const text = await client(sim).chat.completions.create({
      model: "m",
      messages: [user("just chat [[sim fault=broken_tool_json]]")],
      tools: TOOLS,
    });
    expect(text.choices[0]?.message.content).to.match(/^You asked: just chat\./);
  });

  it("context_overflow answers 400 context_length_exceeded even for a short prompt", async () => {
    const res = await postChat(sim, {
      model: "m",
      messages: [user("hi [[sim fault=context_overflow]]")],
    });
    expect(res.status).to.equal(400);
    const { error } = await errorBody(res);
    expect(error.code).to.equal("context_length_exceeded");
    expect(error.param).to.equal("messages");
    expect(error.message).to.match(
      /^This model's maximum context length is 32768 tokens\. However, your messages resulted in \d+ tokens\. Please reduce the length of the messages\.$/,
    );
  });

  it("injects configured fault rates reproducibly from the seed", async () => {
    const statuses = async () => {
      const flaky = await startSim({ faultRate429: 0.4, faultRate500: 0.2, seed: 42 });
      try {
        const out: number[] = [];
        for (let i = 0; i < 30; i++) {
          const res = await postChat(flaky, { model: "m", messages: [user(`q${i}`)] });
          await res.arrayBuffer();
          out.push(res.status);
        }
        return out;
      } finally {
        await flaky.close();
      }
    };
    const first = await statuses();
    expect(await statuses()).to.deep.equal(first);
    expect(new Set(first)).to.deep.equal(new Set([200, 429, 500]));
  });
});
