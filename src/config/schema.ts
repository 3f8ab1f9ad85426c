/**
 * The one schema for every setting of every farm process.
 *
 * Invariants:
 * - every setting has a default that runs on one machine with nothing but Redis;
 * - durations carry `Ms`/`S` and sizes `Bytes`/`Chars`/`Tokens` in their names;
 * - secrets (model API keys) live only here and in the LLM client: never in events, job data or logs.
 */
import { z } from "zod";

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const nonNegativeInt = z.coerce.number().int().min(0);
const ratio = z.coerce.number().min(0).max(1);

export const LOG_LEVELS = ["error", "warn", "info", "http", "verbose", "debug", "silly"] as const;

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
  /** Upper bound on one backoff wait, also when a provider's Retry-After asks for more. */
  maxRetryDelayMs: positiveInt.default(20_000),
});
export type ModelConfig = z.infer<typeof ModelConfigSchema>;

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
    })
    .prefault({}),
  events: z
    .object({
      /** Approximate cap of each session's hot Redis stream (live readers; the store keeps all). */
      hotStreamMaxLen: positiveInt.default(2_000),
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
    })
    .prefault({}),
  turn: z
    .object({
      maxRounds: positiveInt.default(16),
      defaultModel: z.string().min(1).default(SIM_MODEL_NAME),
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
  log: z
    .object({
      level: z.enum(LOG_LEVELS).default("info"),
    })
    .prefault({}),
});

export type FarmConfig = z.infer<typeof ConfigSchema>;
