/**
 * Secrets never reach a log line or a model error message: credential-named fields and
 * credential-looking text are replaced by `[redacted]`, the rest passes untouched.
 */
import { expect } from "chai";
import Transport from "winston-transport";
import { classifyLlmError } from "../../src/llm/llm-error.js";
import { createLogger } from "../../src/obs/logger.js";

class Capture extends Transport {
  readonly lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)));
    next();
  }
}

describe("redaction", () => {
  it("masks credential fields and credential-looking text in logs, keeps the rest", () => {
    const logger = createLogger("test", "info");
    const capture = new Capture();
    logger.clear().add(capture);
    logger.info("calling with Bearer abc.def-123 and sk-live_0123456789abcdef", {
      authorization: "Bearer xyz",
      headers: { "x-api-key": "k-123", accept: "text/event-stream" },
      nested: { note: "key sk-ABCDEFGHIJKLMNOP here" },
      turn_id: "turn_1",
    });
    const line = capture.lines[0] as Record<string, unknown>;
    const text = JSON.stringify(line);
    expect(text).to.not.match(/abc\.def-123|sk-live|Bearer xyz|k-123|sk-ABCDEF/);
    expect(line.authorization).to.equal("[redacted]");
    expect(line.headers).to.deep.equal({ "x-api-key": "[redacted]", accept: "text/event-stream" });
    expect(line.turn_id).to.equal("turn_1");
    expect(line.message).to.equal("calling with [redacted] and [redacted]");
  });

  it("masks credentials a provider echoes in an error message", () => {
    const error = classifyLlmError(
      new Error("bad header Authorization: Bearer sk-abcdefghijkl1234"),
    );
    expect(error.message).to.not.include("sk-abcdefghijkl1234");
    expect(error.message).to.include("[redacted]");
  });
});
