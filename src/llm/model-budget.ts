/**
 * The call budget of each model, shared by every worker process through Redis: a cooldown after
 * a provider's 429, requests and tokens per minute, and calls in flight.
 *
 * Keys, all under `<prefix>:mb:`: `cooldown:<model>` (exists while calls are held; its PTTL is
 * the rest of the hold), `cooling` (zset model → end of its cooldown, so the admin view finds
 * cooled models without SCAN), `probe:<model>` (a probe is due: the hold ended recently),
 * `inflight:<model>` (zset permit id → expiry), `rpm:<model>` and `tpm:<model>`
 * (rate-limiter-flexible's fixed one-minute windows).
 *
 * Invariants:
 * - a denial costs nothing: the slot and request an earlier check took, and the refused consume
 *   itself (rate-limiter-flexible counts it), are given back before the denial is returned;
 * - a permit holds at most one slot for at most `permitTtlMs`, so a crashed worker's slots free
 *   themselves; release is idempotent;
 * - a token correction never credits a later window with an earlier window's over-estimate;
 * - a cooldown only grows: a shorter coolDown never cuts a longer one;
 * - after a hold ends, the first call is a probe: the others are held until it goes through (or
 *   for PROBE_HOLD_MS), so a provider still at its limit sees one call, not a stampede;
 * - slot expiry uses Redis's clock (TIME in Lua), so workers with skewed clocks agree.
 */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { defineScript, type RedisScript } from "../redis/script.js";

/** Long enough for any model call; a crashed worker's slot is lost to the others this long. */
const DEFAULT_PERMIT_TTL_MS = 10 * 60_000;
/**
 * After a 429 hold ends, one call probes the provider while the others wait this long at most
 * (less: a probe that goes through ends the wait), so a still-limited provider gets one call,
 * not every parked turn's call at once.
 */
const PROBE_HOLD_MS = 2_000;
/** A hold's probe is due if the next call comes within this long after the hold ends. */
const PROBE_DUE_WINDOW_MS = 60_000;
/** Slots are freed by releases at call ends, not on a schedule: poll again soon. */
const CONCURRENCY_RETRY_MS = 250;
const RATE_WINDOW_S = 60;

const NOW_MS_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// KEYS: inflight zset. ARGV: permit id, max in flight, permit ttl ms.
const ACQUIRE_SLOT_LUA = `${NOW_MS_LUA}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`;

// The gate after a hold (KEYS: cooldown key, probe-due key; ARGV: probe hold ms). Returns the
// remaining hold in ms; or -1 to the first caller after a hold ended: it is the probe, and the
// others wait (a short hold) until its call shows whether the provider takes calls again.
const HOLD_CHECK_LUA = `
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then return ttl end
if redis.call('DEL', KEYS[2]) == 1 then
  redis.call('SET', KEYS[1], 'probe', 'PX', ARGV[1])
  return -1
end
return 0
`;

// Ends the probe hold early (KEYS: cooldown key) once the probe call went through.
const PROBE_PASSED_LUA = `
if redis.call('GET', KEYS[1]) == 'probe' then redis.call('DEL', KEYS[1]) end
return 1
`;

const IN_FLIGHT_LUA = `${NOW_MS_LUA}
return redis.call('ZCOUNT', KEYS[1], '(' .. string.format('%.0f', now), '+inf')
`;

// KEYS: cooldown key, cooling index, probe-due key. ARGV: hold ms, model, probe window ms.
// Returns the remaining hold in ms.
const COOL_DOWN_LUA = `${NOW_MS_LUA}
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
redis.call('SET', KEYS[3], '1', 'PX', redis.call('PTTL', KEYS[1]) + tonumber(ARGV[3]))
local remaining = redis.call('PTTL', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + remaining, ARGV[2])
if redis.call('PTTL', KEYS[2]) < remaining then redis.call('PEXPIRE', KEYS[2], remaining) end
return remaining
`;

export interface ModelLimits {
  requestsPerMinute?: number;
  tokensPerMinute?: number;
  maxConcurrency?: number;
}

export type BudgetDenial = {
  ok: false;
  reason: "cooldown" | "requests_per_minute" | "tokens_per_minute" | "concurrency";
  retryAfterMs: number;
};

export interface BudgetPermit {
  ok: true;
  /** Returns the concurrency slot and corrects the token estimate with the real usage (idempotent). */
  release(actualTokens?: number): Promise<void>;
}

/** Figures of a dimension the model has no limit for are 0: unlimited dimensions are not counted. */
export interface ModelBudgetUsage {
  model: string;
  limits: ModelLimits;
  requestsThisMinute: number;
  tokensThisMinute: number;
  inFlight: number;
  cooldownRemainingMs: number;
}

interface Limited {
  limits: ModelLimits;
  requests: RateLimiterRedis | null;
  tokens: RateLimiterRedis | null;
}

type Undo = () => Promise<unknown>;

export class ModelBudget {
  private readonly base: string;
  private readonly coolingKey: string;
  private readonly permitTtlMs: number;
  private readonly limited = new Map<string, Limited>();
  private readonly acquireSlot: RedisScript<number>;
  private readonly countInFlight: RedisScript<number>;
  private readonly coolDownScript: RedisScript<number>;
  private readonly holdCheckScript: RedisScript<number>;
  private readonly probePassedScript: RedisScript<number>;

  constructor(
    private readonly redis: Redis,
    keyPrefix: string,
    limits: Record<string, ModelLimits>,
    options: { permitTtlMs?: number } = {},
  ) {
    this.base = `${keyPrefix}:mb`;
    this.coolingKey = `${this.base}:cooling`;
    this.permitTtlMs = options.permitTtlMs ?? DEFAULT_PERMIT_TTL_MS;
    this.acquireSlot = defineScript(redis, "farmBudgetAcquireSlot", 1, ACQUIRE_SLOT_LUA);
    this.countInFlight = defineScript(redis, "farmBudgetInFlight", 1, IN_FLIGHT_LUA);
    this.coolDownScript = defineScript(redis, "farmBudgetCoolDown", 3, COOL_DOWN_LUA);
    this.holdCheckScript = defineScript(redis, "farmBudgetHoldCheck", 2, HOLD_CHECK_LUA);
    this.probePassedScript = defineScript(redis, "farmBudgetProbePassed", 1, PROBE_PASSED_LUA);
    for (const [model, given] of Object.entries(limits)) {
      // Copy the three fields only: callers may pass whole model configs, API keys included.
      const own: ModelLimits = {};
      for (const field of ["requestsPerMinute", "tokensPerMinute", "maxConcurrency"] as const) {
        const value = given[field];
        if (value === undefined) continue;
        if (!Number.isInteger(value) || value <= 0) {
          throw new Error(`model ${model}: ${field} must be a positive integer (got ${value})`);
        }
        own[field] = value;
      }
      if (Object.keys(own).length === 0) continue;
      this.limited.set(model, {
        limits: own,
        requests: own.requestsPerMinute ? this.limiter("rpm", own.requestsPerMinute) : null,
        tokens: own.tokensPerMinute ? this.limiter("tpm", own.tokensPerMinute) : null,
      });
    }
  }

  /** Takes budget for one model call, or says how long to wait. Never waits itself. */
  async tryAcquire(model: string, estimatedTokens: number): Promise<BudgetPermit | BudgetDenial> {
    const cooldownKey = this.key("cooldown", model);
    const hold = await this.holdCheckScript(cooldownKey, this.key("probe", model), PROBE_HOLD_MS);
    if (hold > 0) return { ok: false, reason: "cooldown", retryAfterMs: hold };
    // The probe's success lets everyone through at once instead of after the probe hold.
    const probePassed = async (actualTokens?: number) => {
      if (hold === -1 && actualTokens !== undefined) await this.probePassedScript(cooldownKey);
    };
    const m = this.limited.get(model);
    if (!m) return { ok: true, release: probePassed };

    const taken: Undo[] = [];
    const deny = async (reason: BudgetDenial["reason"], ms: number): Promise<BudgetDenial> => {
      await undo(taken);
      return { ok: false, reason, retryAfterMs: Math.max(1, Math.ceil(ms)) };
    };
    try {
      const slotKey = this.key("inflight", model);
      const slot = randomUUID();
      const max = m.limits.maxConcurrency;
      if (max !== undefined) {
        if ((await this.acquireSlot(slotKey, slot, max, this.permitTtlMs)) !== 1) {
          return await deny("concurrency", CONCURRENCY_RETRY_MS);
        }
        taken.push(() => this.redis.zrem(slotKey, slot));
      }
      if (m.requests) {
        const requests = m.requests;
        const { ok, res } = await consume(requests, model, 1);
        const windowEndMs = Date.now() + res.msBeforeNext;
        taken.push(() => refund(requests, model, 1, windowEndMs));
        if (!ok) return await deny("requests_per_minute", res.msBeforeNext);
      }
      let charged = 0;
      let tokenWindowEndMs = 0;
      if (m.tokens && m.limits.tokensPerMinute !== undefined) {
        const tokens = m.tokens;
        // An estimate above the limit could never pass: it takes the whole window instead.
        const estimate = Number.isFinite(estimatedTokens) ? Math.ceil(estimatedTokens) : 1;
        charged = Math.min(Math.max(1, estimate), m.limits.tokensPerMinute);
        const { ok, res } = await consume(tokens, model, charged);
        tokenWindowEndMs = Date.now() + res.msBeforeNext;
        if (!ok) {
          taken.push(() => refund(tokens, model, charged, tokenWindowEndMs));
          return await deny("tokens_per_minute", res.msBeforeNext);
        }
      }
      let released = false;
      return {
        ok: true,
        release: async (actualTokens?: number) => {
          if (released) return;
          released = true;
          const steps: Promise<unknown>[] = [probePassed(actualTokens)];
          if (max !== undefined) steps.push(this.redis.zrem(slotKey, slot));
          if (m.tokens && actualTokens !== undefined && Number.isFinite(actualTokens)) {
            const diff = Math.max(0, Math.ceil(actualTokens)) - charged;
            // Under-estimates are charged to the current window: the provider counts them now.
            if (diff > 0) steps.push(m.tokens.penalty(model, diff));
            if (diff < 0) steps.push(refund(m.tokens, model, -diff, tokenWindowEndMs));
          }
          await Promise.all(steps);
        },
      };
    } catch (err) {
      await undo(taken).catch(() => {});
      throw err;
    }
  }

  /**
   * A provider said 429: every worker holds calls to this model for `ms` (extends, never
   * shortens, an existing cooldown).
   */
  async coolDown(model: string, ms: number): Promise<void> {
    if (!(ms > 0)) return;
    await this.coolDownScript(
      this.key("cooldown", model),
      this.coolingKey,
      this.key("probe", model),
      Math.ceil(ms),
      model,
      PROBE_DUE_WINDOW_MS,
    );
  }

  /** Remaining cooldown of the model in ms (0 when none). */
  async cooldownMs(model: string): Promise<number> {
    const ttl = await this.redis.pttl(this.key("cooldown", model));
    return Math.max(ttl, 0);
  }

  /** Per-model usage for the admin view, for every model with limits or a cooldown. */
  async usage(): Promise<ModelBudgetUsage[]> {
    const cooled = await this.redis.zrange(this.coolingKey, 0, -1);
    const models = [...new Set([...this.limited.keys(), ...cooled])].sort();
    const rows = await Promise.all(models.map((model) => this.modelUsage(model)));
    return rows.filter((row) => this.limited.has(row.model) || row.cooldownRemainingMs > 0);
  }

  private async modelUsage(model: string): Promise<ModelBudgetUsage> {
    const m = this.limited.get(model);
    const slots = m?.limits.maxConcurrency !== undefined;
    const [cooldownRemainingMs, requestsThisMinute, tokensThisMinute, inFlight] = await Promise.all(
      [
        this.cooldownMs(model),
        consumedPoints(m?.requests, model),
        consumedPoints(m?.tokens, model),
        slots ? this.countInFlight(this.key("inflight", model)) : 0,
      ],
    );
    return {
      model,
      limits: { ...(m?.limits ?? {}) },
      requestsThisMinute,
      tokensThisMinute,
      inFlight,
      cooldownRemainingMs,
    };
  }

  private limiter(kind: "rpm" | "tpm", points: number): RateLimiterRedis {
    return new RateLimiterRedis({
      storeClient: this.redis,
      useRedisPackage: false,
      keyPrefix: `${this.base}:${kind}`,
      points,
      duration: RATE_WINDOW_S,
    });
  }

  private key(kind: "cooldown" | "inflight" | "probe", model: string): string {
    return `${this.base}:${kind}:${model}`;
  }
}

/** Runs the undo steps once (the list is emptied), then reports the first failure. */
async function undo(steps: Undo[]): Promise<void> {
  const results = await Promise.allSettled(steps.splice(0).map((step) => step()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}

/** rate-limiter-flexible rejects a refused consume with its result, not an Error. */
async function consume(limiter: RateLimiterRedis, model: string, points: number) {
  try {
    return { ok: true, res: await limiter.consume(model, points) };
  } catch (err) {
    if (err instanceof RateLimiterRes) return { ok: false, res: err };
    throw err;
  }
}

/**
 * Gives points back to the window they were taken from, and only to it: a reward on a key that
 * has expired creates it at minus the points, lifting the next window above its limit.
 */
async function refund(limiter: RateLimiterRedis, model: string, points: number, endMs: number) {
  if (Date.now() >= endMs) return;
  const res = await limiter.reward(model, points);
  // Below zero: the window rolled over in between; take the credit back from the new one.
  if (res.consumedPoints < 0) await limiter.penalty(model, points);
}

async function consumedPoints(limiter: RateLimiterRedis | null | undefined, model: string) {
  if (!limiter) return 0;
  const res = await limiter.get(model);
  return Math.max(0, res?.consumedPoints ?? 0);
}
