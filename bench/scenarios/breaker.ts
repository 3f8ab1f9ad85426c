/**
 * `breaker`: an MCP server that hangs (server-everything's long-running operation, asked to run
 * for an hour, bounded by a short call timeout). Calls to it time out until the source's breaker
 * opens; after that they must fail fast (target < 5 ms), while rounds calling a tool of another
 * source run as fast as before the hang (their latency before vs during, medians).
 */
import { ToolCallPolicies } from "../../src/tools/orchestrator/call-policy.js";
import { median, percentile, round } from "../stats.js";
import { benchTool, calls, everythingServer, TOOLS_DEFAULTS, ToolBench } from "../tool-fixtures.js";

export interface BreakerOptions {
  callTimeoutMs: number;
  refusedCalls: number;
  otherRounds: number;
}

const HANG_ARGS = JSON.stringify({ duration: 3_600, steps: 1 });

export async function breaker(options: BreakerOptions, log: (line: string) => void) {
  const bench = await ToolBench.open();
  const server = await everythingServer(options.callTimeoutMs);
  try {
    const policies = new ToolCallPolicies({ ...TOOLS_DEFAULTS, breakerHalfOpenAfterMs: 600_000 });
    const hang = server.tool("trigger-long-running-operation");
    const other = benchTool("other", { delayMs: 20 });
    const otherRound = async () => (await bench.round([other], calls("other", 4), policies)).ms;

    const before: number[] = [];
    for (let i = 0; i < options.otherRounds; i++) before.push(await otherRound());

    // The other source's rounds run beside the hung calls until the breaker opens.
    const during: number[] = [];
    let opened = false;
    const beside = (async () => {
      while (!opened) during.push(await otherRound());
    })();
    const timedOut: number[] = [];
    for (let i = 0; i < TOOLS_DEFAULTS.breakerThreshold; i++) {
      const { outcome, ms } = await bench.round(
        [hang],
        [{ id: `h${i}`, name: hang.name, arguments: HANG_ARGS }],
        policies,
      );
      if (outcome.guard[0]?.ok) throw new Error("breaker: the hanging call succeeded");
      timedOut.push(ms);
    }
    opened = true;
    await beside;
    const state = policies.breakerStates().find((b) => b.breakerKey === hang.breakerKey)?.state;
    if (state !== "open") throw new Error(`breaker: expected an open breaker, got ${state}`);

    const refused: number[] = [];
    for (let i = 0; i < options.refusedCalls; i++) {
      const started = performance.now();
      const outcome = await policies.run(
        hang,
        options.callTimeoutMs,
        new AbortController().signal,
        (s) =>
          hang.call(
            { duration: 3_600, steps: 1 },
            { workspaceRoot: "/", signal: s, limits: TOOLS_DEFAULTS },
          ),
      );
      refused.push(performance.now() - started);
      if (outcome.attempts !== 0) throw new Error("breaker: a call reached the open source");
    }
    // The same refusal as the model meets it: a whole round (announce, refuse, record).
    const refusedRounds: number[] = [];
    for (let i = 0; i < 50; i++) {
      const hangCall = { id: `r${i}`, name: hang.name, arguments: HANG_ARGS };
      refusedRounds.push((await bench.round([hang], [hangCall], policies)).ms);
    }
    const after: number[] = [];
    for (let i = 0; i < options.otherRounds; i++) after.push(await otherRound());

    const figures = {
      timed_out_calls_before_open: timedOut.length,
      timed_out_call_ms: round(median(timedOut)),
      refused_call_p50_ms: round(median(refused), 3),
      refused_call_p99_ms: round(percentile(refused, 99), 3),
      refused_round_p50_ms: round(median(refusedRounds), 2),
      target_refused_ms: 5,
      met: percentile(refused, 99) < 5,
      other_source_round_ms: {
        before_hang: round(median(before), 1),
        during_hang: round(median(during), 1),
        after_open: round(median(after), 1),
        ratio_during_to_before: round(median(during) / median(before), 2),
        rounds_during_hang: during.length,
      },
      settings: options,
    };
    log(`breaker: ${JSON.stringify(figures)}`);
    return figures;
  } finally {
    await server.close();
    await bench.close();
  }
}
