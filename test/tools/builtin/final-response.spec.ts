import { expect } from "chai";
import { finalResponseTool } from "../../../src/tools/builtin/final-response.js";
import { contextFor, runTool } from "./helpers.js";

describe("tools/final_response", () => {
  it("is a terminal control tool that hands back the answer unchanged", async () => {
    expect(finalResponseTool).to.include({ kind: "terminal", family: "control" });
    expect(finalResponseTool.policy).to.deep.equal({ idempotent: true });
    const content = "The answer is 42.\n\n- with *markdown*";
    const out = await runTool(finalResponseTool, { content }, contextFor("/nonexistent"));
    expect(out).to.deep.equal({ ok: true, data: { answer: content } });
  });

  it("requires content", () => {
    expect(finalResponseTool.input.safeParse({}).success).to.equal(false);
    expect(finalResponseTool.input.safeParse({ content: "" }).success).to.equal(true);
  });
});
