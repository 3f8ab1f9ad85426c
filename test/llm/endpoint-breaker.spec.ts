/**
 * The per-endpoint circuit breaker through ModelClients.stream against a real local HTTP server
 * whose answers the test switches, counting the requests that actually reach it.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { ModelConfigSchema } from "../../src/config/schema.js";
import { ModelClients } from "../../src/llm/chat-stream.js";
import {
  countsAsEndpointFailure,
  EndpointBreakers,
  endpointOf,
} from "../../src/llm/endpoint-breaker.js";
import { LlmError } from "../../src/llm/llm-error.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type Mode = "ok" | "500" | "429" | "400" | "cut" | "slow_ok";

const SSE_OK = [
  { choices: [{ index: 0, delta: { role: "assistant", content: "hi" }, finish_reason: null }] },
  { choices: [{ index: 0, delta: {}, finish_reason: "stop" }] },
]
  .map(
    (c) =>
      `data: ${JSON.stringify({ id: "x", object: "chat.completion.chunk", created: 0, model: "m", ...c })}\n\n`,
  )
  .concat("data: [DONE]\n\n")
  .join("");

/** A fake provider: answers every chat request per `mode`, counting them by path. */
class FakeProvider {
  mode: Mode = "500";
  readonly hits = new Map<string, number>();
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const path = req.url ?? "";
        this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
        const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { "content-type": "application/json", ...headers });
          res.end(JSON.stringify(body));
        };
        const sse = () => {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.end(SSE_OK);
        };
        if (this.mode === "500") json(500, { error: { message: "boom", type: "server_error" } });
        else if (this.mode === "429") {
          json(429, { error: { message: "slow down", type: "requests" } }, { "retry-after": "0" });
        } else if (this.mode === "400") json(400, { error: { message: "bad", type: "invalid" } });
        else if (this.mode === "cut") {
          res.writeHead(200, { "content-type": "text/event-stream" });
          res.flushHeaders();
          setImmediate(() => res.destroy());
        } else if (this.mode === "slow_ok") setTimeout(sse, 200);
        else sse();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  url(path = "/v1"): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  count(path = "/v1"): number {
    return this.hits.get(`${path}/chat/completions`) ?? 0;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

function model(baseUrl: string, threshold = 3, halfOpenAfterMs = 300) {
  return ModelConfigSchema.parse({
    baseUrl,
    model: "m",
    breakerThreshold: threshold,
    breakerHalfOpenAfterMs: halfOpenAfterMs,
  });
}

async function call(clients: ModelClients, name: string, signal?: AbortSignal): Promise<unknown> {
  try {
    return await clients.stream(name, {
      messages: [{ role: "user", content: "hi" }],
      tools: [],
      signal: signal ?? new AbortController().signal,
      onDelta: () => undefined,
    });
  } catch (err) {
    return err;
  }
}

function kindOf(result: unknown): string {
  return result instanceof LlmError ? result.kind : "ok";
}

describe("endpoint circuit breaker", () => {
  let provider: FakeProvider;
  let breakers: EndpointBreakers;
  let clients: ModelClients;

  beforeEach(async () => {
    provider = new FakeProvider();
    await provider.start();
    breakers = new EndpointBreakers();
  });
  afterEach(async () => {
    await clients?.close();
    await provider.stop();
  });

  it("opens after the threshold of 500s, lets nothing through, then a good trial closes it", async () => {
    clients = new ModelClients({ a: model(provider.url()) }, breakers);
    for (let i = 0; i < 3; i++) expect(kindOf(await call(clients, "a"))).to.equal("provider_error");
    expect(provider.count()).to.equal(3);
    expect(breakers.states()).to.deep.equal([{ endpoint: provider.url(), state: "open" }]);

    for (let i = 0; i < 5; i++) {
      const refused = await call(clients, "a");
      expect(refused).to.be.instanceOf(LlmError);
      const error = refused as LlmError;
      expect(error.kind).to.equal("circuit_open");
      expect(error.retryable).to.equal(true);
      expect(error.message).to.match(
        new RegExp(
          `^model endpoint ${provider.url()} is failing; circuit open, next trial in \\d+ ms$`,
        ),
      );
    }
    expect(provider.count(), "no request while open").to.equal(3);
    expect(clients.unavailable("a")?.kind).to.equal("circuit_open");

    await sleep(320);
    expect(clients.unavailable("a")).to.equal(null);
    provider.mode = "ok";
    expect(kindOf(await call(clients, "a"))).to.equal("ok");
    expect(provider.count()).to.equal(4);
    expect(breakers.states()).to.deep.equal([{ endpoint: provider.url(), state: "closed" }]);
    expect(kindOf(await call(clients, "a"))).to.equal("ok");
    expect(provider.count()).to.equal(5);
  });

  it("a failed trial opens the circuit again for another period", async () => {
    clients = new ModelClients({ a: model(provider.url(), 2, 200) }, breakers);
    await call(clients, "a");
    await call(clients, "a");
    expect(kindOf(await call(clients, "a"))).to.equal("circuit_open");
    await sleep(220);
    expect(kindOf(await call(clients, "a")), "the trial").to.equal("provider_error");
    expect(provider.count()).to.equal(3);
    expect(kindOf(await call(clients, "a"))).to.equal("circuit_open");
    expect(provider.count()).to.equal(3);
    expect(breakers.states()[0]?.state).to.equal("open");
  });

  it("fails calls fast while the half-open trial is in flight", async () => {
    clients = new ModelClients({ a: model(provider.url(), 1, 100) }, breakers);
    await call(clients, "a");
    await sleep(120);
    provider.mode = "slow_ok";
    const trial = call(clients, "a");
    await sleep(20);
    expect(breakers.states()[0]?.state).to.equal("half_open");
    const during = await call(clients, "a");
    expect(kindOf(during)).to.equal("circuit_open");
    expect((during as LlmError).message).to.match(/a trial call is in flight/);
    expect(kindOf(await trial)).to.equal("ok");
    expect(provider.count()).to.equal(2);
    expect(breakers.states()[0]?.state).to.equal("closed");
  });

  it("counts network failures (a stream cut before the first token)", async () => {
    clients = new ModelClients({ a: model(provider.url(), 2) }, breakers);
    provider.mode = "cut";
    expect(kindOf(await call(clients, "a"))).to.equal("network");
    expect(kindOf(await call(clients, "a"))).to.equal("network");
    expect(kindOf(await call(clients, "a"))).to.equal("circuit_open");
    expect(provider.count()).to.equal(2);
  });

  it("neither counts nor resets on 429, other 4xx and aborts", async () => {
    clients = new ModelClients({ a: model(provider.url(), 3) }, breakers);
    await call(clients, "a");
    await call(clients, "a");
    for (const mode of ["429", "400"] as const) {
      provider.mode = mode;
      for (let i = 0; i < 4; i++) {
        expect(kindOf(await call(clients, "a"))).to.equal(
          mode === "429" ? "rate_limited" : "bad_request",
        );
      }
    }
    const aborted = new AbortController();
    aborted.abort();
    expect(kindOf(await call(clients, "a", aborted.signal))).to.equal("aborted");
    provider.mode = "slow_ok";
    const midway = new AbortController();
    setTimeout(() => midway.abort(), 50);
    expect(kindOf(await call(clients, "a", midway.signal)), "aborted mid-call").to.equal("aborted");
    expect(breakers.states()[0]?.state).to.equal("closed");
    provider.mode = "500";
    expect(kindOf(await call(clients, "a")), "third failure in a row").to.equal("provider_error");
    expect(kindOf(await call(clients, "a"))).to.equal("circuit_open");
  });

  it("is shared by the models of one endpoint, and only by them", async () => {
    clients = new ModelClients(
      {
        a: model(provider.url(), 2),
        b: model(`${provider.url()}/`, 2),
        other: model(provider.url("/v2"), 2),
      },
      breakers,
    );
    await call(clients, "a");
    await call(clients, "b");
    expect(kindOf(await call(clients, "a"))).to.equal("circuit_open");
    expect(kindOf(await call(clients, "b"))).to.equal("circuit_open");
    expect(kindOf(await call(clients, "other"))).to.equal("provider_error");
    expect(provider.count("/v2")).to.equal(1);
    // A second client set in the same process (another worker) sees the same open circuit.
    const more = new ModelClients({ c: model(provider.url(), 5) }, breakers);
    try {
      expect(kindOf(await call(more, "c"))).to.equal("circuit_open");
    } finally {
      await more.close();
    }
    expect(breakers.states()).to.deep.equal([
      { endpoint: provider.url(), state: "open" },
      { endpoint: provider.url("/v2"), state: "closed" },
    ]);
    expect(provider.count()).to.equal(2);
  });

  it("forgets an endpoint once every client holding it has closed", async () => {
    clients = new ModelClients({ a: model(provider.url(), 1) }, breakers);
    await call(clients, "a");
    expect(breakers.states()).to.have.length(1);
    await clients.close();
    expect(breakers.states()).to.deep.equal([]);
    clients = new ModelClients({ a: model(provider.url(), 1) }, breakers);
    expect(kindOf(await call(clients, "a")), "a fresh breaker").to.equal("provider_error");
  });
});

describe("endpoint breaker helpers", () => {
  it("names an endpoint by origin and path, without credentials, query or final slash", () => {
    expect(endpointOf("https://user:secret@api.example.com:8443/v1/?x=1")).to.equal(
      "https://api.example.com:8443/v1",
    );
    expect(endpointOf("http://127.0.0.1:8090/v1")).to.equal("http://127.0.0.1:8090/v1");
  });

  it("counts only transient provider failures", () => {
    const counted = (kind: LlmError["kind"], status: number | null = null) =>
      countsAsEndpointFailure(new LlmError(kind, "x", status));
    expect(counted("provider_error", 500)).to.equal(true);
    expect(counted("provider_error", 503)).to.equal(true);
    expect(counted("network")).to.equal(true);
    expect(counted("timeout")).to.equal(true);
    expect(counted("empty_response")).to.equal(true);
    expect(counted("provider_error", 408)).to.equal(false);
    expect(counted("rate_limited", 429)).to.equal(false);
    expect(counted("bad_request", 400)).to.equal(false);
    expect(counted("auth_failed", 401)).to.equal(false);
    expect(counted("context_window_exceeded", 400)).to.equal(false);
    expect(counted("aborted")).to.equal(false);
    expect(counted("circuit_open")).to.equal(false);
    expect(countsAsEndpointFailure(new Error("not an LlmError"))).to.equal(false);
  });
});
