/**
 * Submission over HTTP: idempotency keys (repeat, race, mismatch) and every class of bad input,
 * each answered with the documented status and error envelope — never a 500.
 */
import { expect } from "chai";
import { type Accepted, http, submit, waitForTurn } from "../helpers/client.js";
import { TestFarm } from "../helpers/farm.js";

interface ErrorBody {
  error: { code: string; message: string; retryable: boolean; details?: unknown };
}

describe("submit: idempotency and bad input (end to end)", () => {
  let farm: TestFarm;

  before(async () => {
    farm = await TestFarm.start();
  });
  after(async () => {
    await farm.stop();
  });

  describe("Idempotency-Key", () => {
    it("returns the same turn for the same key and payload", async () => {
      const body = { input: "hello", user_id: "idem-1" };
      const first = await http<Accepted>(farm.url, "POST", "/v1/turns", body, {
        "Idempotency-Key": "k-repeat",
      });
      const second = await http<Accepted>(farm.url, "POST", "/v1/turns", body, {
        "Idempotency-Key": "k-repeat",
      });
      expect(first.status).to.equal(202);
      expect(second.status).to.equal(202);
      expect(second.body.turn_id).to.equal(first.body.turn_id);
      expect(second.headers.get("idempotent-replayed")).to.equal("true");
      expect(first.headers.get("idempotent-replayed")).to.equal(null);
      await waitForTurn(farm.url, first.body.turn_id);
      const third = await http<Accepted>(farm.url, "POST", "/v1/turns", body, {
        "Idempotency-Key": "k-repeat",
      });
      expect(third.body).to.deep.include({ turn_id: first.body.turn_id, status: "completed" });
    });

    it("creates exactly one turn when requests with the same key race", async () => {
      const body = { input: "race me", user_id: "idem-race", session_id: "race-session" };
      const replies = await Promise.all(
        Array.from({ length: 12 }, () =>
          http<Accepted>(farm.url, "POST", "/v1/turns", body, { "Idempotency-Key": "k-race" }),
        ),
      );
      expect(replies.map((r) => r.status)).to.deep.equal(Array(12).fill(202));
      const ids = new Set(replies.map((r) => r.body.turn_id));
      expect(ids.size).to.equal(1);
      const turnId = [...ids][0] as string;
      const turn = await waitForTurn(farm.url, turnId);
      expect(turn.status).to.equal("completed");
      const session = await http<{ turns: unknown[] }>(
        farm.url,
        "GET",
        "/v1/sessions/race-session",
      );
      expect(session.body.turns).to.have.length(1);
      // One `queued` event, one terminal: the racing replays appended nothing.
      const page = await http<{ events: { type: string }[] }>(
        farm.url,
        "GET",
        "/v1/sessions/race-session/events",
      );
      expect(page.body.events.filter((e) => e.type === "queued")).to.have.length(1);
      expect(page.body.events.filter((e) => e.type === "turn_terminal")).to.have.length(1);
    });

    it("refuses the same key with a different payload (422)", async () => {
      await submit(
        farm.url,
        { input: "one", user_id: "idem-2" },
        { "Idempotency-Key": "k-mismatch" },
      );
      const reply = await http<ErrorBody>(
        farm.url,
        "POST",
        "/v1/turns",
        { input: "two", user_id: "idem-2" },
        {
          "Idempotency-Key": "k-mismatch",
        },
      );
      expect(reply.status).to.equal(422);
      expect(reply.body.error.code).to.equal("idempotency_key_reused");
    });

    it("scopes keys per user", async () => {
      const a = await submit(
        farm.url,
        { input: "same", user_id: "idem-a" },
        { "Idempotency-Key": "k-shared" },
      );
      const b = await submit(
        farm.url,
        { input: "same", user_id: "idem-b" },
        { "Idempotency-Key": "k-shared" },
      );
      expect(a.turn_id).to.not.equal(b.turn_id);
    });

    it("rejects a malformed key (400)", async () => {
      const reply = await http<ErrorBody>(
        farm.url,
        "POST",
        "/v1/turns",
        { input: "x" },
        { "Idempotency-Key": "bad key with spaces" },
      );
      expect(reply.status).to.equal(400);
      expect(reply.body.error.details).to.deep.include({
        field: "Idempotency-Key",
        code: "invalid_header",
        message: "must be 1–255 printable ASCII characters",
      });
    });
  });

  describe("bad input", () => {
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      http<ErrorBody>(farm.url, "POST", "/v1/turns", body, headers);

    it("malformed JSON → 400 invalid_json", async () => {
      const reply = await post('{"input": "x",');
      expect(reply.status).to.equal(400);
      expect(reply.body.error.code).to.equal("invalid_json");
      expect(reply.body.error.retryable).to.equal(false);
    });

    it("wrong types → 400 with field-level details", async () => {
      const reply = await post({ input: 42, tools: "list_files", session_id: "../etc" });
      expect(reply.status).to.equal(400);
      expect(reply.body.error.code).to.equal("invalid_request");
      const fields = (reply.body.error.details as { field: string }[]).map((d) => d.field).sort();
      expect(fields).to.deep.equal(["input", "session_id", "tools"]);
    });

    it("missing input, empty input, unknown fields → 400", async () => {
      for (const body of [{}, { input: "" }, { input: "x", colour: "blue" }, [], "just a string"]) {
        const reply = await post(body);
        expect(reply.status, JSON.stringify(body)).to.equal(400);
        expect(reply.body.error.code).to.be.oneOf(["invalid_request", "invalid_json"]);
      }
    });

    it("input over 1,048,576 chars → 413 with the limit and the actual size", async () => {
      const reply = await post({ input: "x".repeat(1_048_577) });
      expect(reply.status).to.equal(413);
      expect(reply.body.error.code).to.equal("input_too_large");
      expect(reply.body.error.details).to.deep.equal({
        field: "input",
        max_chars: 1_048_576,
        actual_chars: 1_048_577,
      });
      const exact = await post({ input: "x".repeat(1_048_576) });
      expect(exact.status).to.equal(202);
    });

    it("a body over the byte limit → 413 payload_too_large", async () => {
      const reply = await post(JSON.stringify({ input: "y".repeat(9 * 1024 * 1024) }));
      expect(reply.status).to.equal(413);
      expect(reply.body.error.code).to.equal("payload_too_large");
    });

    it("a body that is not JSON → 415", async () => {
      const reply = await post("input=hello", { "content-type": "text/plain" });
      expect(reply.status).to.equal(415);
      expect(reply.body.error.code).to.equal("unsupported_media_type");
    });

    it("unknown model or tool → 400 naming what is available", async () => {
      const model = await post({ input: "x", model: "gpt-99" });
      expect(model.status).to.equal(400);
      expect(model.body.error.details).to.deep.include({
        field: "model",
        code: "unknown_model",
        message: 'unknown model "gpt-99"; configured: sim',
      });
      const tool = await post({ input: "x", tools: ["list_files", "teleport"] });
      expect(tool.status).to.equal(400);
      expect((tool.body.error.details as { field: string }[])[0]?.field).to.equal("tools");
    });

    it("hostile shapes → 400, never a 500: deep nesting, names inherited from Object", async () => {
      const depth = 20_000;
      const nested = await post(
        `{"input":"x","metadata":{"deep":${"[".repeat(depth)}"leaf"${"]".repeat(depth)}}}`,
      );
      expect(nested.status).to.equal(400);
      expect((nested.body.error.details as { field: string }[])[0]?.field).to.equal("metadata");
      for (const model of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
        const reply = await post({ input: "x", model });
        expect(reply.status, model).to.equal(400);
        expect(reply.body.error.details).to.deep.include({
          field: "model",
          code: "unknown_model",
          message: `unknown model "${model}"; configured: sim`,
        });
      }
    });

    it("another user's session → 404, without revealing it exists", async () => {
      const owned = await submit(farm.url, { input: "mine", user_id: "owner" });
      const reply = await post({
        input: "let me in",
        user_id: "intruder",
        session_id: owned.session_id,
      });
      expect(reply.status).to.equal(404);
      expect(reply.body.error.code).to.equal("not_found");
    });

    it("unknown ids → 404 on every read", async () => {
      for (const path of [
        "/v1/turns/turn_01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "/v1/turns/nonsense",
        "/v1/turns/nonsense/events",
        "/v1/turns/nonsense/events?format=json",
        "/v1/sessions/nope",
        "/v1/sessions/nope/events",
        `/v1/turns/${"x".repeat(5000)}`,
      ]) {
        const reply = await http<ErrorBody>(farm.url, "GET", path);
        expect(reply.status, path).to.equal(404);
        expect(reply.body.error.code).to.equal("not_found");
      }
      const cancel = await http<ErrorBody>(farm.url, "POST", "/v1/turns/nonsense/cancel");
      expect(cancel.status).to.equal(404);
    });

    it("bad query or Last-Event-ID → 400", async () => {
      const accepted = await submit(farm.url, { input: "x" });
      const limit = await http<ErrorBody>(
        farm.url,
        "GET",
        `/v1/turns/${accepted.turn_id}/events?format=json&limit=0`,
      );
      expect(limit.status).to.equal(400);
      expect((limit.body.error.details as { field: string }[])[0]?.field).to.equal("query.limit");
      const header = await http<ErrorBody>(
        farm.url,
        "GET",
        `/v1/turns/${accepted.turn_id}/events`,
        undefined,
        {
          "last-event-id": "abc",
        },
      );
      expect(header.status).to.equal(400);
    });

    it("unknown routes → 404 route_not_found", async () => {
      const reply = await http<ErrorBody>(farm.url, "DELETE", "/v1/turns");
      expect(reply.status).to.equal(404);
      expect(reply.body.error.code).to.equal("route_not_found");
    });

    it("the process is still healthy after all of the above", async () => {
      expect((await http(farm.url, "GET", "/healthz")).status).to.equal(200);
      const ready = await http<{ status: string }>(farm.url, "GET", "/readyz");
      expect(ready.status).to.equal(200);
      expect(ready.body.status).to.equal("ready");
      const doc = await http<{ openapi: string; paths: Record<string, unknown> }>(
        farm.url,
        "GET",
        "/v1/openapi.json",
      );
      expect(doc.body.openapi).to.equal("3.1.0");
      expect(Object.keys(doc.body.paths)).to.include.members([
        "/v1/turns",
        "/v1/turns/{id}/events",
      ]);
    });
  });
});
