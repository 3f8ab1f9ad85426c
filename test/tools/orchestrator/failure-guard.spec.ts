/**
 * ToolFailureGuard: identical failures (same tool, arguments and error) in a row stop the turn,
 * a success or a different error starts the count over, and rounds of only invalid calls stop it after the allowed re-prompts.
 */
import { expect } from "chai";
import {
  type GuardedCall,
  ToolFailureGuard,
} from "../../../src/tools/orchestrator/failure-guard.js";

const fail = (tool: string, error: string, args = "{}"): GuardedCall => ({
  tool,
  args,
  ok: false,
  error,
  invalid: false,
});
const pass = (tool: string): GuardedCall => ({ tool, args: "{}", ok: true, invalid: false });
const invalid = (tool: string): GuardedCall => ({
  tool,
  args: "{",
  ok: false,
  error: "bad json",
  invalid: true,
});

describe("tools: failure guard", () => {
  it("trips when the same tool fails with the same error threshold times in a row", () => {
    const guard = new ToolFailureGuard(3, 2);
    expect(guard.afterRound([fail("read_file", "no such file")])).to.equal(null);
    expect(guard.afterRound([fail("read_file", "no such file")])).to.equal(null);
    const trip = guard.afterRound([fail("read_file", "no such file")]);
    expect(trip?.stopReason).to.equal("tool_failure_guard");
    expect(trip?.meta).to.include({ tool: "read_file", repeat_count: 3, threshold: 3 });
  });

  it("counts parallel identical failures of one round", () => {
    const guard = new ToolFailureGuard(3, 2);
    const trip = guard.afterRound([fail("web", "503"), fail("web", "503"), fail("web", "503")]);
    expect(trip?.stopReason).to.equal("tool_failure_guard");
  });

  it("starts over after a success or a different error", () => {
    const guard = new ToolFailureGuard(2, 2);
    expect(guard.afterRound([fail("t", "a")])).to.equal(null);
    expect(guard.afterRound([pass("t")])).to.equal(null);
    expect(guard.afterRound([fail("t", "a")])).to.equal(null);
    expect(guard.afterRound([fail("t", "b")])).to.equal(null);
    expect(guard.afterRound([fail("t", "b")])?.stopReason).to.equal("tool_failure_guard");
  });

  it("does not count the same error for different arguments (five failing commands are work)", () => {
    const guard = new ToolFailureGuard(2, 2);
    expect(
      guard.afterRound([fail("execute_command", "exit code 1", '{"command":"npm test"}')]),
    ).to.equal(null);
    expect(
      guard.afterRound([fail("execute_command", "exit code 1", '{"command":"npm run lint"}')]),
    ).to.equal(null);
    expect(
      guard.afterRound([fail("execute_command", "exit code 1", '{"command":"npm run lint"}')])
        ?.stopReason,
    ).to.equal("tool_failure_guard");
  });

  it("ignores aborted calls", () => {
    const guard = new ToolFailureGuard(1, 2);
    expect(guard.afterRound([{ ...fail("t", "aborted"), aborted: true }])).to.equal(null);
  });

  it("allows two re-prompts after rounds of only invalid calls, then stops", () => {
    const guard = new ToolFailureGuard(5, 2);
    expect(guard.afterRound([invalid("x")])).to.equal(null);
    expect(guard.afterRound([invalid("x"), invalid("y")])).to.equal(null);
    const trip = guard.afterRound([invalid("x")]);
    expect(trip?.stopReason).to.equal("invalid_tool_calls");
    expect(trip?.meta).to.include({ rounds: 3, limit: 2 });
  });

  it("resets the invalid-round count when a round has a valid call", () => {
    const guard = new ToolFailureGuard(5, 1);
    expect(guard.afterRound([invalid("x")])).to.equal(null);
    expect(guard.afterRound([invalid("x"), pass("y")])).to.equal(null);
    expect(guard.afterRound([invalid("x")])).to.equal(null);
  });
});
