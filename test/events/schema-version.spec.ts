/**
 * Versioned payloads: every reader accepts the versions it knows and refuses unknown (future)
 * ones with an error that names the payload, the version and what this build reads.
 */
import { expect } from "chai";
import { parseEnvelopeLine } from "../../src/events/event-log.js";
import {
  checkEnvelopeText,
  checkToolResultVersion,
  UnsupportedSchemaVersionError,
} from "../../src/events/schema-version.js";
import { RecordedTurn } from "../../src/turn/recorded-turn.js";

const envelope = (v: unknown, type = "progress", data: Record<string, unknown> = {}) =>
  JSON.stringify({ v, seq: 1, session_id: "s", turn_id: "t", user_id: "u", type, ts: 1, data });

describe("events: schema versions", () => {
  it("reads envelope version 1, in any spacing", () => {
    expect(parseEnvelopeLine(envelope(1)).seq).to.equal(1);
    expect(() => checkEnvelopeText('{ "v": 1, "seq": 1 }')).to.not.throw();
  });

  it("refuses a future or missing envelope version with a clear error", () => {
    for (const v of [2, 99, "1", undefined]) {
      expect(() => parseEnvelopeLine(envelope(v)), String(v))
        .to.throw(UnsupportedSchemaVersionError)
        .with.property("code", "unsupported_schema_version");
      expect(() => checkEnvelopeText(envelope(v))).to.throw(UnsupportedSchemaVersionError);
    }
    expect(() => parseEnvelopeLine(envelope(2))).to.throw(
      /event envelope has schema version 2; this build reads version 1/,
    );
  });

  it("reads tool results of version 1, and those written before the field existed", () => {
    expect(checkToolResultVersion(1)).to.equal(1);
    expect(checkToolResultVersion(undefined)).to.equal(1);
    const recorded = RecordedTurn.fromEvents("t", [
      parseEnvelopeLine(
        envelope(1, "tool_result", { model_round: 1, tool_call_id: "c1", ok: true, data: "x" }),
      ),
    ]);
    expect(recorded.toolResult(1, "c1")).to.deep.equal({ ok: true, data: "x" });
  });

  it("refuses to resume from a tool result of a future version", () => {
    const future = parseEnvelopeLine(
      envelope(1, "tool_result", { model_round: 1, tool_call_id: "c1", result_v: 3, ok: true }),
    );
    expect(() => RecordedTurn.fromEvents("t", [future])).to.throw(
      /tool_result payload has schema version 3; this build reads version 1, 2/,
    );
  });

  it("resumes from version 1 and version 2 tool results alike", () => {
    const v1 = parseEnvelopeLine(
      envelope(1, "tool_result", { model_round: 1, tool_call_id: "c1", ok: true, data: { a: 1 } }),
    );
    const v2 = parseEnvelopeLine(
      envelope(1, "tool_result", {
        model_round: 1,
        tool_call_id: "c2",
        result_v: 2,
        ok: true,
        data: null,
        preview: "cut view",
        meta: { truncated: true },
      }),
    );
    const recorded = RecordedTurn.fromEvents("t", [v1, v2]);
    expect(recorded.toolResult(1, "c1")).to.deep.equal({ ok: true, data: { a: 1 } });
    expect(recorded.toolResult(1, "c2")?.preview).to.equal("cut view");
  });
});
