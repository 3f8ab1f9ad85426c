/**
 * The runtime fault switch: `POST /sim/faults` makes one model (matched on the request body's
 * `model`, or every model with `"*"`) answer a share of its requests with 429 and a Retry-After
 * until the rule is cleared, so a test or benchmark can rate-limit a model for a time window
 * while other models keep answering.
 *
 * Invariants:
 * - a rule for the exact model wins over the `"*"` rule; a rate of 0 removes the rule;
 * - draws come from a PRNG of their own (seeded from `config.seed`), one per request that a rule
 *   matches and no directive or configured rate already failed, so switching a rule on or off
 *   never shifts the configured-rate faults of faults.ts, and the same rules over the same
 *   request order fail the same requests.
 */
import { seededRandom } from "./hash.js";
import type { RequestProblem } from "./request.js";

export interface FaultRule {
  /** A provider model id as clients send it in `model`, or `"*"` for every model. */
  model: string;
  /** Share of the model's requests answered with 429, 0..1. */
  rate429: number;
  retryAfterS: number;
}

export const ANY_MODEL = "*";
const MAX_MODEL_CHARS = 256;
const MAX_RETRY_AFTER_S = 3_600;
const RULE_FIELDS = new Set(["model", "rate429", "retryAfterS"]);
/** Keeps this PRNG's sequence apart from the configured-rate one seeded with the same seed. */
const SEED_SALT = 0x9e3779b9;

export class FaultSwitch {
  private readonly rules = new Map<string, FaultRule>();
  private readonly random: () => number;

  constructor(seed: number) {
    this.random = seededRandom((seed ^ SEED_SALT) >>> 0);
  }

  /** Adds or replaces the model's rule; a rate of 0 removes it. */
  set(rule: FaultRule): void {
    if (rule.rate429 > 0) this.rules.set(rule.model, { ...rule });
    else this.rules.delete(rule.model);
  }

  /** Removes the model's rule, or every rule when no model is given. */
  clear(model?: string): void {
    if (model === undefined) this.rules.clear();
    else this.rules.delete(model);
  }

  list(): FaultRule[] {
    return [...this.rules.values()].map((rule) => ({ ...rule }));
  }

  /** The Retry-After (s) of a 429 this request of `model` is to get, or undefined. */
  pick429(model: string): number | undefined {
    const rule = this.rules.get(model) ?? this.rules.get(ANY_MODEL);
    if (!rule) return undefined;
    return this.random() < rule.rate429 ? rule.retryAfterS : undefined;
  }
}

/** Validates a `POST /sim/faults` body: `{"model", "rate429", "retryAfterS"?}`. */
export function parseFaultRule(
  body: string,
  defaultRetryAfterS: number,
): FaultRule | RequestProblem {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return { message: "The body is not valid JSON.", param: null };
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return { message: "The body must be a JSON object.", param: null };
  }
  const fields = parsed as Record<string, unknown>;
  const unknown = Object.keys(fields).find((key) => !RULE_FIELDS.has(key));
  if (unknown !== undefined) return { message: `Unknown field '${unknown}'.`, param: unknown };
  const { model, rate429, retryAfterS = defaultRetryAfterS } = fields;
  if (typeof model !== "string" || model.length === 0 || model.length > MAX_MODEL_CHARS) {
    return { message: `'model' must be a model id or "${ANY_MODEL}".`, param: "model" };
  }
  if (typeof rate429 !== "number" || !(rate429 >= 0 && rate429 <= 1)) {
    return { message: "'rate429' must be a number from 0 to 1.", param: "rate429" };
  }
  if (
    typeof retryAfterS !== "number" ||
    !Number.isInteger(retryAfterS) ||
    retryAfterS < 0 ||
    retryAfterS > MAX_RETRY_AFTER_S
  ) {
    return {
      message: `'retryAfterS' must be an integer from 0 to ${MAX_RETRY_AFTER_S}.`,
      param: "retryAfterS",
    };
  }
  return { model, rate429, retryAfterS };
}
