/**
 * Decides which fault, if any, a request suffers: a `fault=` directive first (within its
 * `fault_times` budget), else the configured per-request rates drawn from a PRNG seeded by
 * `config.seed`, so a run with the same request order fails the same requests.
 *
 * Invariants:
 * - every request draws exactly one number per rate, whatever the outcome, so one request's
 *   directive never shifts the faults of the requests after it;
 * - `fault_times` budgets live in a bounded LRU map (old conversations are forgotten first);
 * - a budget counts the requests of one user turn in one model round, because a client retries
 *   a failed request (429, 500, hang, cut, context_overflow) in the same round.
 *   `broken_tool_json` is the exception: its retry is the model's own next round (after the
 *   tool reports invalid arguments), so its budget spans the whole turn and `fault_times=1`
 *   ends in a corrected, successful call.
 */
import type { FarmConfig } from "../config/schema.js";
import type { Directives, FaultKind } from "./directives.js";
import { seededRandom } from "./hash.js";
import { LruMap } from "./lru.js";
import type { TurnPosition } from "./script.js";

const BUDGET_ENTRIES = 10_000;
export const DEFAULT_RETRY_AFTER_S = 1;

export class FaultInjector {
  private readonly used = new LruMap<string, number>(BUDGET_ENTRIES);
  private readonly random: () => number;
  private readonly rates: [FaultKind, number][];

  constructor(config: FarmConfig["sim"]) {
    this.random = seededRandom(config.seed);
    this.rates = [
      ["429", config.faultRate429],
      ["500", config.faultRate500],
      ["hang", config.faultRateHang],
      ["broken_tool_json", config.faultRateBrokenToolJson],
    ];
  }

  pick(directives: Directives, position: TurnPosition): FaultKind | undefined {
    let drawn: FaultKind | undefined;
    for (const [fault, rate] of this.rates) {
      if (this.random() < rate) drawn ??= fault;
    }
    const fault = directives.fault;
    if (fault === undefined) return drawn;
    if (directives.faultTimes === undefined) return fault;
    const round = fault === "broken_tool_json" ? "any" : position.round;
    const key = `${position.turnKey}\u0000${round}\u0000${fault}`;
    const used = this.used.get(key) ?? 0;
    if (used >= directives.faultTimes) return drawn;
    this.used.set(key, used + 1);
    return fault;
  }
}

/**
 * Tool-call arguments cut mid-way, as a provider's truncated stream would leave them. The script
 * only emits JSON objects, and no proper prefix of a JSON object parses.
 */
export function breakArguments(args: string): string {
  return args.slice(0, Math.max(1, Math.ceil(args.length / 2)));
}
