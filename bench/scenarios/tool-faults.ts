/**
 * `tool-faults`: an idempotent tool that fails transiently 20% of the time, called round after
 * round through the orchestrator. Figure: the share of calls the model still sees failing
 * (target < 1%, wunder's plan) with the farm's default policies (retries, breaker), against the
 * same calls with retries and breaker off (the baseline, ≈ the raw 20%), and the retries it took.
 * Backoff delays are shortened to 1–5 ms so the run measures outcomes, not waiting.
 */

import { seededRandom } from "../../src/sim/hash.js";
import { ToolCallPolicies } from "../../src/tools/orchestrator/call-policy.js";
import { round } from "../stats.js";
import { benchTool, calls, TOOLS_DEFAULTS, ToolBench } from "../tool-fixtures.js";

export interface ToolFaultsOptions {
  rounds: number;
  callsPerRound: number;
  failRate: number;
}

export async function toolFaults(options: ToolFaultsOptions, log: (line: string) => void) {
  const bench = await ToolBench.open();
  try {
    const run = async (maxRetries: number, breakerThreshold: number) => {
      let retries = 0;
      const policies = new ToolCallPolicies(
        {
          ...TOOLS_DEFAULTS,
          maxRetries,
          breakerThreshold,
          retryInitialDelayMs: 1,
          retryMaxDelayMs: 5,
        },
        { onRetry: () => retries++ },
      );
      const tool = benchTool("flaky", { failRate: options.failRate, random: seededRandom(7) });
      let failed = 0;
      let total = 0;
      for (let r = 0; r < options.rounds; r++) {
        const { outcome } = await bench.round(
          [tool],
          calls("flaky", options.callsPerRound),
          policies,
        );
        total += outcome.guard.length;
        failed += outcome.guard.filter((c) => !c.ok).length;
      }
      return {
        calls: total,
        failures_seen_by_model: failed,
        failure_rate_pct: round((100 * failed) / total, 3),
        retries,
      };
    };
    const withRetries = await run(TOOLS_DEFAULTS.maxRetries, TOOLS_DEFAULTS.breakerThreshold);
    log(`tool-faults with retries: ${JSON.stringify(withRetries)}`);
    // The baseline has no breaker either: with it, the raw 20% would trip it and refuse the rest.
    const withoutRetries = await run(0, Number.MAX_SAFE_INTEGER);
    log(`tool-faults without retries: ${JSON.stringify(withoutRetries)}`);
    return {
      injected_failure_rate_pct: options.failRate * 100,
      with_default_policies: { ...withRetries, max_retries: TOOLS_DEFAULTS.maxRetries },
      baseline_no_retries_no_breaker: withoutRetries,
      target_failure_rate_pct: 1,
      met: withRetries.failure_rate_pct < 1,
      settings: options,
    };
  } finally {
    await bench.close();
  }
}
