/**
 * The environment variables operators set, and the setting each one fills. Apart from
 * `FARM_CONFIG` (the config file's path, read by the loader), this table is the only place an
 * env name appears; docs/operations.md lists the same names (a test checks it).
 */

/** The model `LLM_BASE_URL` configures. */
export const REAL_MODEL_NAME = "default";

export interface EnvSetting {
  env: string;
  path: string[];
  /** The value is a JSON document (an object or list setting), not a scalar. */
  json?: boolean;
}

const setting = (env: string, dotted: string): EnvSetting => ({ env, path: dotted.split(".") });
const jsonSetting = (env: string, dotted: string): EnvSetting => ({
  ...setting(env, dotted),
  json: true,
});

export const ENV_SETTINGS: readonly EnvSetting[] = [
  setting("PORT", "api.port"),
  setting("API_HOST", "api.host"),
  setting("SSE_HEARTBEAT_MS", "api.sseHeartbeatMs"),
  setting("IDEMPOTENCY_TTL_S", "api.idempotencyTtlS"),
  setting("ADMIN_TOKEN", "api.adminToken"),
  setting("REDIS_URL", "redis.url"),
  setting("REDIS_PREFIX", "redis.prefix"),
  setting("MONGO_URL", "store.mongoUrl"),
  setting("SQLITE_PATH", "store.sqlitePath"),
  setting("PERSIST_BACKLOG_WARN_ENTRIES", "events.persistBacklogWarnEntries"),
  setting("PERSISTER_METRICS_PORT", "events.persisterMetricsPort"),
  setting("EVENT_BUCKET", "store.bucketGranularity"),
  setting("RETENTION_DAYS", "store.retentionDays"),
  setting("ARCHIVE_DIR", "store.archiveDir"),
  setting("ARCHIVE_INTERVAL_MS", "store.archiveIntervalMs"),
  setting("ARCHIVER_METRICS_PORT", "store.archiverMetricsPort"),
  setting("SNAPSHOT_EVERY_EVENTS", "store.snapshotEveryEvents"),
  setting("MONGO_MAX_POOL_SIZE", "store.mongoMaxPoolSize"),
  setting("MONGO_SERVER_SELECTION_TIMEOUT_MS", "store.mongoServerSelectionTimeoutMs"),
  setting("MONGO_SOCKET_TIMEOUT_MS", "store.mongoSocketTimeoutMs"),
  setting("DATA_DIR", "dataDir"),
  setting("WORKER_CONCURRENCY", "worker.concurrency"),
  setting("METRICS_PORT", "worker.metricsPort"),
  setting("WORKER_LOCK_DURATION_MS", "worker.lockDurationMs"),
  setting("WORKER_STALLED_INTERVAL_MS", "worker.stalledIntervalMs"),
  setting("WORKER_MAX_STALLED_COUNT", "worker.maxStalledCount"),
  setting("SHUTDOWN_GRACE_MS", "worker.shutdownGraceMs"),
  setting("SESSION_LEASE_TTL_MS", "worker.sessionLeaseTtlMs"),
  setting("RECONCILE_INTERVAL_MS", "worker.reconcileIntervalMs"),
  setting("RECONCILE_MIN_AGE_MS", "worker.reconcileMinAgeMs"),
  setting("MODEL_WAIT_MAX_MS", "worker.modelWaitMaxMs"),
  setting("MODEL_DEFER_MAX_MS", "worker.modelDeferMaxMs"),
  setting("FAIR_MAX_RUNNING_PER_USER", "scheduler.maxRunningPerUser"),
  setting("FAIR_MAX_QUEUED_PER_USER", "scheduler.maxQueuedPerUser"),
  setting("FAIR_DEFAULT_TIER", "scheduler.defaultTier"),
  setting("FAIR_OVERLOAD_QUEUE_DEPTH", "scheduler.overloadQueueDepth"),
  setting("FAIR_OVERLOAD_WAIT_MS", "scheduler.overloadWaitMs"),
  setting("FAIR_DISPATCH_PREFETCH", "scheduler.dispatchPrefetch"),
  setting("MAX_ROUNDS", "turn.maxRounds"),
  setting("DEFAULT_MODEL", "turn.defaultModel"),
  setting("LLM_BASE_URL", `models.${REAL_MODEL_NAME}.baseUrl`),
  setting("LLM_API_KEY", `models.${REAL_MODEL_NAME}.apiKey`),
  setting("LLM_MODEL", `models.${REAL_MODEL_NAME}.model`),
  setting("LLM_CONTEXT_WINDOW_TOKENS", `models.${REAL_MODEL_NAME}.contextWindowTokens`),
  setting("LLM_MAX_OUTPUT_TOKENS", `models.${REAL_MODEL_NAME}.maxOutputTokens`),
  setting("LLM_TIMEOUT_MS", `models.${REAL_MODEL_NAME}.requestTimeoutMs`),
  setting("LLM_REQUESTS_PER_MINUTE", `models.${REAL_MODEL_NAME}.requestsPerMinute`),
  setting("LLM_TOKENS_PER_MINUTE", `models.${REAL_MODEL_NAME}.tokensPerMinute`),
  setting("LLM_MAX_CONCURRENCY", `models.${REAL_MODEL_NAME}.maxConcurrency`),
  setting("COMMAND_TIMEOUT_MS", "tools.commandTimeoutMs"),
  setting("COMMAND_OUTPUT_MAX_BYTES", "tools.commandOutputMaxBytes"),
  setting("TOOL_RESULT_MAX_CHARS", "tools.resultMaxChars"),
  setting("TOOL_PARALLELISM", "tools.parallelism"),
  setting("TOOL_CALL_TIMEOUT_MS", "tools.callTimeoutMs"),
  setting("TOOL_MAX_RETRIES", "tools.maxRetries"),
  setting("TOOL_BREAKER_THRESHOLD", "tools.breakerThreshold"),
  setting("TOOL_BREAKER_HALF_OPEN_AFTER_MS", "tools.breakerHalfOpenAfterMs"),
  setting("TOOL_FAILURE_GUARD_THRESHOLD", "tools.failureGuardThreshold"),
  setting("WEB_FETCH_ALLOW_PRIVATE", "tools.webFetchAllowPrivate"),
  jsonSetting("MCP_SERVERS", "tools.mcpServers"),
  setting("DELTA_FLUSH_MS", "events.deltaFlushMs"),
  setting("SIM_PORT", "sim.port"),
  setting("SIM_HOST", "sim.host"),
  setting("SIM_TTFT_MS", "sim.ttftMs"),
  setting("SIM_TOKEN_DELAY_MS", "sim.tokenDelayMs"),
  setting("SIM_CONTEXT_WINDOW_TOKENS", "sim.contextWindowTokens"),
  setting("SIM_FAULT_RATE_429", "sim.faultRate429"),
  setting("SIM_FAULT_RATE_500", "sim.faultRate500"),
  setting("SIM_FAULT_RATE_HANG", "sim.faultRateHang"),
  setting("SIM_FAULT_RATE_BROKEN_TOOL_JSON", "sim.faultRateBrokenToolJson"),
  setting("SIM_SEED", "sim.seed"),
  setting("FARM_WORKERS", "launcher.workers"),
  setting("OTEL_EXPORTER_OTLP_ENDPOINT", "tracing.otlpEndpoint"),
  setting("OTEL_TRACES_SAMPLER_ARG", "tracing.sampleRatio"),
  setting("LOG_LEVEL", "log.level"),
  jsonSetting("LOG_MODULE_LEVELS", "log.modules"),
  jsonSetting("LOG_REDACT_PATTERNS", "log.redactPatterns"),
];

export function setPath(target: Record<string, unknown>, at: string[], value: unknown): void {
  let node = target;
  for (const key of at.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== "object" || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[at[at.length - 1] as string] = value;
}
