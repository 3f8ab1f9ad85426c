/**
 * The one schema for every setting of every farm process.
 *
 * Invariants:
 * - every setting has a default that runs on one machine with nothing but Redis;
 * - durations carry `Ms`/`S` and sizes `Bytes`/`Chars`/`Tokens` in their names;
 * - secrets (model API keys) live only here and in the LLM client: never in events, job data or logs.
 */
import { z } from "zod";
import { TOOL_PROTOCOLS } from "../prompt/prompt-pipeline.js";
import { DEFAULT_SYSTEM_PROMPT } from "../prompt/system-prompt.js";
import { BUCKET_GRANULARITIES } from "../store/buckets.js";
import { MCP_SERVER_NAME, McpServerConfigSchema } from "../tools/mcp/mcp-config.js";

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const ratio = z.coerce.number().min(0).max(1);

export const LOG_LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"] as const;
/** The modules whose log level `log.modules` can set (see src/obs/logger.ts `moduleLogger`). */
export const LOG_MODULES = [
  "api",
  "redis",
  "scheduler",
  "queue",
  "turn",
  "tools",
  "events",
  "store",
] as const;

export const ModelConfigSchema = z.object({
  /** OpenAI-compatible endpoint, e.g. `https://api.openai.com/v1`. */
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKey: z.string().default(""),
  /** The provider's model id sent in the request body. */
  model: z.string().min(1),
  contextWindowTokens: positiveInt.default(32_768),
  maxOutputTokens: positiveInt.default(4_096),
  /** Whole-request bound for one model call (connect to last chunk). */
  requestTimeoutMs: positiveInt.default(120_000),
  /** Longest silence between two stream chunks before the call counts as hung. */
  idleTimeoutMs: positiveInt.default(60_000),
  /** Retries after the first attempt for transient failures (429, 5xx, network, hang). */
  maxRetries: nonNegativeInt.default(4),
  /**
   * Upper bound on one backoff wait after a failed call. A 429's Retry-After is honoured in full
   * (it holds the model for every worker; long holds park the turn, see worker.modelWaitMaxMs).
   */
  maxRetryDelayMs: positiveInt.default(20_000),
  /**
   * Calls per minute all workers together may start, below the provider's own limit so calls
   * are held before they earn a 429. Unset: unlimited.
   */
  requestsPerMinute: positiveInt.optional(),
  /**
   * Tokens (prompt + output: estimated when a call starts, corrected when it ends) per minute
   * across all workers. Unset: unlimited.
   */
  tokensPerMinute: positiveInt.optional(),
  /** Calls to this model in flight at once across all workers. Unset: unlimited. */
  maxConcurrency: positiveInt.optional(),
  /**
   * Transient failures in a row (5xx, network, timeout, empty answer; not 429 or other 4xx) after
   * which the endpoint's circuit breaker opens and calls to it fail at once, per worker process.
   * Models sharing a `baseUrl` share one breaker, set by the first of them that is called.
   */
  breakerThreshold: positiveInt.default(5),
  /** How long an open breaker fails calls before it lets one trial call through. */
  breakerHalfOpenAfterMs: positiveInt.default(30_000),
  /**
   * Longest tool result (chars) this model is shown, cut head + tail; unset → tools.resultMaxChars.
   * Small-context models want less.
   */
  toolResultMaxChars: positiveInt.optional(),
  /**
   * How the model calls tools: `native` function calling, or wunder's `text` protocol
   * (`<tool_call>` blocks in the answer, tools listed in the system message) for models
   * without it. See docs/context.md.
   */
  toolProtocol: z.enum(TOOL_PROTOCOLS).default("native"),
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

/** A class of users: its share of dispatch and its own limits (unset → the scheduler's defaults). */
export const TierSchema = z.object({
  /** Relative share of dispatch while users compete: weight 2 gets twice the turns of weight 1. */
  weight: z.coerce.number().positive().max(1_000).default(1),
  maxRunningPerUser: positiveInt.optional(),
  maxQueuedPerUser: positiveInt.optional(),
});
export type TierConfig = z.infer<typeof TierSchema>;

export const DEFAULT_TIER = "default";

export const SIM_MODEL_NAME = "sim";

export const ConfigSchema = z.object({
  redis: z
    .object({
      url: z
        .string()
        .regex(/^rediss?:\/\//, "must start with redis:// or rediss://")
        .default("redis://127.0.0.1:6379"),
      /** Prefix of every Redis key the farm owns; lets several farms (or tests) share one Redis. */
      prefix: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/, "letters, digits, _ or -")
        .default("farm"),
    })
    .prefault({}),
  dataDir: z.string().min(1).default("./data"),
  store: z
    .object({
      /** Unset → embedded SQLite under dataDir. */
      mongoUrl: z
        .string()
        .regex(/^mongodb(\+srv)?:\/\//)
        .optional(),
      sqlitePath: z.string().min(1).optional(),
      /** New events go to `events_<bucket>` by their timestamp; existing buckets keep theirs. */
      bucketGranularity: z.enum(BUCKET_GRANULARITIES).default("day"),
      /** Buckets that ended more than this many days ago are archived; 0 keeps them forever. */
      retentionDays: nonNegativeInt.default(30),
      /** Where archives go (compressed JSONL + manifest per bucket). Unset → `<dataDir>/archive`. */
      archiveDir: z.string().min(1).optional(),
      /** How often the archiver looks for buckets past retention. */
      archiveIntervalMs: positiveInt.default(3_600_000),
      /** The archiver's `/metrics` and `/healthz`; 0 picks a free port. */
      archiverMetricsPort: port.default(9462),
      /** A turn's end saves a context snapshot once this many events passed since the last one. */
      snapshotEveryEvents: positiveInt.default(500),
      mongoMaxPoolSize: positiveInt.default(20),
      mongoServerSelectionTimeoutMs: positiveInt.default(5_000),
      mongoSocketTimeoutMs: positiveInt.default(30_000),
    })
    .prefault({}),
  api: z
    .object({
      port: port.default(8080),
      host: z.string().default("0.0.0.0"),
      /** Request bodies above this are refused with 413 before parsing. */
      maxBodyBytes: positiveInt.default(8 * 1024 * 1024),
      sseHeartbeatMs: positiveInt.default(15_000),
      idempotencyTtlS: positiveInt.default(86_400),
      /**
       * Bearer token for `/v1/admin/*`. Unset: those routes answer only clients on this host
       * (loopback), so a fresh install does not expose who is queueing what.
       */
      adminToken: z.string().min(16, "use at least 16 characters").optional(),
      /** How long `POST …/cancel` waits for a running turn to reach its terminal state. */
      cancelWaitMs: nonNegativeInt.default(2_000),
    })
    .prefault({}),
  worker: z
    .object({
      concurrency: positiveInt.default(32),
      /** Worker `/metrics` and `/healthz`; 0 picks a free port (several workers on one host). */
      metricsPort: port.default(9464),
      /** BullMQ job lock; renewed every half of it. A dead worker's turn is recovered after about this long. */
      lockDurationMs: positiveInt.default(30_000),
      stalledIntervalMs: positiveInt.default(15_000),
      /** How many worker crashes one turn survives before it fails. */
      maxStalledCount: nonNegativeInt.default(2),
      /** SIGTERM: running turns get this long to finish, then are handed back to the queue. */
      shutdownGraceMs: positiveInt.default(25_000),
      /** The per-session lease of a running turn; renewed every third of it. */
      sessionLeaseTtlMs: positiveInt.default(30_000),
      /**
       * Longest a turn waits in a worker slot for a model's budget (rate limits, a provider's
       * 429); a longer wait hands the turn back to the queue until the budget returns.
       */
      modelWaitMaxMs: nonNegativeInt.default(500),
      /** How often one worker (farm-wide) repairs stuck turns, slots and counters. */
      reconcileIntervalMs: positiveInt.default(30_000),
      /** Turns younger than this may still be mid-submit; the repair leaves them alone. */
      reconcileMinAgeMs: positiveInt.default(60_000),
      /** A turn held back by a model's limits this long in total fails with `rate_limited`. */
      modelDeferMaxMs: positiveInt.default(600_000),
    })
    .prefault({}),
  scheduler: z
    .object({
      /** Turns of one user dispatched or running at once, across all workers. */
      maxRunningPerUser: positiveInt.default(4),
      /** Turns of one user waiting for dispatch; more is refused with 429. */
      maxQueuedPerUser: positiveInt.default(100),
      tiers: z.record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), TierSchema).default({}),
      /** user id → tier name; users not listed are in `defaultTier`. */
      userTiers: z.record(z.string(), z.string()).default({}),
      defaultTier: z.string().default(DEFAULT_TIER),
      /** Overload: more turns than this waiting for dispatch → new turns get 503. */
      overloadQueueDepth: positiveInt.default(10_000),
      /** Overload: a dispatchable turn has waited for a worker longer than this → 503. */
      overloadWaitMs: positiveInt.default(60_000),
      /** Retry-After sent with a 429 (user queue full) and a 503 (overload). */
      userQueueFullRetryAfterS: positiveInt.default(5),
      overloadRetryAfterS: positiveInt.default(15),
      /** Turns dispatched beyond the free worker slots, so a worker never waits for dispatch. */
      dispatchPrefetch: nonNegativeInt.default(4),
      /** Safety-net dispatch pass of every worker (dispatch is normally triggered by events). */
      dispatchTickMs: positiveInt.default(500),
    })
    .prefault({})
    .superRefine((s, ctx) => {
      for (const [user, tier] of Object.entries(s.userTiers)) {
        if (!Object.hasOwn(s.tiers, tier) && tier !== DEFAULT_TIER) {
          ctx.addIssue({
            code: "custom",
            path: ["userTiers", user],
            message: `unknown tier "${tier}"; defined: ${[DEFAULT_TIER, ...Object.keys(s.tiers)].join(", ")}`,
          });
        }
      }
      if (!Object.hasOwn(s.tiers, s.defaultTier) && s.defaultTier !== DEFAULT_TIER) {
        ctx.addIssue({
          code: "custom",
          path: ["defaultTier"],
          message: `unknown tier "${s.defaultTier}"`,
        });
      }
    }),
  events: z
    .object({
      /** Approximate cap of each session's hot Redis stream (live readers; the store keeps all). */
      hotStreamMaxLen: positiveInt.default(2_000),
      /** The persister's `/metrics` and `/healthz`; 0 picks a free port. */
      persisterMetricsPort: port.default(9463),
      /** A session's hot stream lives this long after its last turn ends. */
      hotStreamTtlAfterTerminalS: positiveInt.default(120),
      /**
       * A session's sequence counter lives this long after its last event, then is rebuilt from
       * the store (one key per recently active session: an hour keeps Redis small at any rate).
       */
      seqTtlS: positiveInt.default(3_600),
      /** LLM deltas are coalesced into one event per this window or this many chars, whichever comes first. */
      deltaFlushMs: nonNegativeInt.default(50),
      deltaFlushChars: positiveInt.default(160),
      persistBatchSize: positiveInt.default(500),
      /** The persister warns (once a minute) while this many entries wait in the persist stream. */
      persistBacklogWarnEntries: positiveInt.default(100_000),
    })
    .prefault({}),
  turn: z
    .object({
      maxRounds: positiveInt.default(16),
      defaultModel: z.string().min(1).default(SIM_MODEL_NAME),
      /**
       * Written into a new session's history by its first turn and frozen there for the
       * session's life (src/prompt/system-prompt.ts); "" for none.
       */
      systemPrompt: z.string().max(65_536).default(DEFAULT_SYSTEM_PROMPT),
    })
    .prefault({}),
  context: z
    .object({
      /** Compaction starts when a request would reach this share of the limit. */
      triggerRatio: z.coerce.number().gt(0).max(1).default(0.9),
      /** Kept free besides the model's output reserve: what the estimate may miss. */
      safetyMarginTokens: nonNegativeInt.default(512),
      /** The first exchange is kept verbatim within this (and a tenth of the limit). */
      keepHeadTokens: positiveInt.default(8_192),
      /** Recent exchanges kept verbatim within this (and a quarter of the limit). */
      keepTailTokens: positiveInt.default(16_384),
      /** Longest summary kept (and at most a sixth of the limit). */
      summaryMaxTokens: positiveInt.default(4_096),
      /** Tool results are never cut below this while trimming. */
      observationMinTokens: positiveInt.default(128),
      /** A compaction aims at this share of the limit, leaving room for the next rounds. */
      goalRatio: z.coerce.number().gt(0).max(1).default(0.6),
    })
    .prefault({}),
  models: z.record(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/), ModelConfigSchema).default({}),
  tools: z
    .object({
      commandTimeoutMs: positiveInt.default(30_000),
      maxCommandTimeoutMs: positiveInt.default(300_000),
      commandOutputMaxBytes: positiveInt.default(64 * 1024),
      readFileMaxBytes: positiveInt.default(256 * 1024),
      /**
       * Longest tool result (chars of JSON) handed back to the model, cut head + tail. The
       * `tool_result` event carries the tool's own data, bounded by the tool's own limits.
       */
      resultMaxChars: positiveInt.default(20_000),
      webFetchTimeoutMs: positiveInt.default(15_000),
      webFetchMaxBytes: positiveInt.default(2 * 1024 * 1024),
      /** Lets `web_fetch` reach loopback, private and link-local addresses (off: SSRF guard). */
      webFetchAllowPrivate: z.stringbool().or(z.boolean()).default(false),
      /** Calls of one model round running at once (read-only calls share, mutating run alone). */
      parallelism: positiveInt.default(4),
      /** Bound of one call that names none and whose tool has no default of its own. */
      callTimeoutMs: positiveInt.default(120_000),
      /** Longest bound a call may ask for with its own `timeout_ms` argument. */
      maxCallTimeoutMs: positiveInt.default(1_200_000),
      /**
       * Retries of an idempotent tool's transient failure (exponential backoff with jitter).
       * 3 keeps a tool failing 20% of the time under 1% failures seen by the model (0.2⁴).
       */
      maxRetries: nonNegativeInt.default(3),
      retryInitialDelayMs: positiveInt.default(100),
      retryMaxDelayMs: positiveInt.default(2_000),
      /** Consecutive transient failures of one source that open its breaker. */
      breakerThreshold: positiveInt.default(5),
      /** An open breaker lets one trial call through after this long (half-open). */
      breakerHalfOpenAfterMs: positiveInt.default(30_000),
      /** Calls of one source running at once in one worker, and waiting for a slot. */
      bulkheadConcurrency: positiveInt.default(32),
      bulkheadQueue: nonNegativeInt.default(256),
      /** The same tool failing with the same error this many times in a row stops the turn. */
      failureGuardThreshold: positiveInt.default(5),
      /** Rounds in a row with only invalid calls (bad JSON, unknown tool) before the turn stops. */
      maxInvalidCallRounds: positiveInt.default(2),
      /** How often each tool source is probed; a failing one is withheld from prompts. */
      healthCheckIntervalMs: positiveInt.default(15_000),
      mcpServers: z
        .record(
          z.string().regex(MCP_SERVER_NAME, "letters, digits, _ or -, at most 32"),
          McpServerConfigSchema,
        )
        .default({}),
    })
    .prefault({}),
  sim: z
    .object({
      port: port.default(8090),
      host: z.string().default("127.0.0.1"),
      ttftMs: nonNegativeInt.default(0),
      tokenDelayMs: nonNegativeInt.default(0),
      contextWindowTokens: positiveInt.default(32_768),
      /** Probabilities per request; each fault is also selectable per request by a directive. */
      faultRate429: ratio.default(0),
      faultRate500: ratio.default(0),
      faultRateHang: ratio.default(0),
      faultRateBrokenToolJson: ratio.default(0),
      seed: nonNegativeInt.default(1),
    })
    .prefault({}),
  launcher: z
    .object({
      /** Worker processes `npm start` runs beside the API. */
      workers: positiveInt.default(1),
    })
    .prefault({}),
  tracing: z
    .object({
      /**
       * The OTLP/HTTP collector's base URL (e.g. `http://127.0.0.1:4318`); spans go to
       * `<url>/v1/traces`. Unset: tracing is off and costs nothing.
       */
      otlpEndpoint: z.url({ protocol: /^https?$/ }).optional(),
      /** Share of new traces recorded; a caller's sampled flag decides for its own traces. */
      sampleRatio: ratio.default(1),
    })
    .prefault({}),
  log: z
    .object({
      level: z.enum(LOG_LEVELS).default("info"),
      /**
       * Levels of single modules (`{"scheduler": "debug"}`), over `level`. Modules: api, redis,
       * scheduler, queue, turn (model calls and compaction too), tools, events, store.
       */
      modules: z.partialRecord(z.enum(LOG_MODULES), z.enum(LOG_LEVELS)).default({}),
      /**
       * Extra secrets to mask in log lines, as regular expressions (JavaScript syntax); each
       * match becomes `[redacted]`. Bearer tokens, `sk-…` keys, credential-named fields and the
       * configured model API keys are masked without being listed.
       */
      redactPatterns: z
        .array(
          z.string().refine((source) => {
            try {
              new RegExp(source, "g");
              return true;
            } catch {
              return false;
            }
          }, "not a valid regular expression"),
        )
        .default([]),
    })
    .prefault({}),
});

export type FarmConfig = z.infer<typeof ConfigSchema>;
