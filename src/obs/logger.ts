/**
 * winston JSON logs for every process. Context (user_id, session_id, turn_id, tool…) travels by
 * child loggers, so every line of a turn carries it without the caller repeating it.
 *
 * Invariants:
 * - nothing that looks like a credential reaches a transport: credential-named fields, bearer
 *   tokens and `sk-…` keys (see `redact.ts`), the secrets of the configuration (`logSettingsOf`)
 *   and every `log.redactPatterns` match are replaced by `[redacted]`;
 * - a line logged through `moduleLogger(…, m)` carries `module: m` and passes at
 *   `log.modules[m]`, else at `log.level`; the logger itself runs at the most verbose of them, so
 *   turning one module up costs the others one object check per dropped line.
 */
import winston from "winston";
import type { FarmConfig, LOG_LEVELS, LOG_MODULES } from "../config/schema.js";
import { REDACTED, redactSecrets, SECRET_FIELD } from "./redact.js";

type LogLevel = (typeof LOG_LEVELS)[number];
type LogModule = (typeof LOG_MODULES)[number];

export interface LogSettings {
  level: LogLevel;
  modules?: Partial<Record<LogModule, LogLevel>>;
  /** Regular expression sources; every match is masked. */
  redactPatterns?: string[];
  /** Exact secret values (API keys, tokens) to mask wherever they appear. */
  secrets?: string[];
}

export type Logger = winston.Logger;

/**
 * The log settings of a farm process: `log.*` plus the secrets its configuration holds — model
 * API keys, the admin token, and MCP servers' header and environment values (a server's stderr
 * is logged, and may echo them).
 */
export function logSettingsOf(
  config: Pick<FarmConfig, "log" | "models" | "api" | "tools">,
): LogSettings {
  const mcp = Object.values(config.tools.mcpServers).flatMap((server) =>
    Object.values(server.transport === "http" ? server.headers : server.env),
  );
  const secrets = [
    ...Object.values(config.models).map((model) => model.apiKey),
    config.api.adminToken ?? "",
    ...mcp,
  ];
  return { ...config.log, secrets };
}

/** The shortest secret masked as a literal: shorter values would mask ordinary words. */
const SECRET_MIN_CHARS = 8;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function extraMask(settings: LogSettings): RegExp | null {
  const sources = [
    ...(settings.redactPatterns ?? []),
    ...(settings.secrets ?? []).filter((s) => s.length >= SECRET_MIN_CHARS).map(escapeRegExp),
  ];
  return sources.length === 0 ? null : new RegExp(sources.map((s) => `(?:${s})`).join("|"), "g");
}

function maskText(text: string, extra: RegExp | null): string {
  const masked = redactSecrets(text);
  return extra ? masked.replace(extra, REDACTED) : masked;
}

function redactValue(value: unknown, depth: number, extra: RegExp | null): unknown {
  if (typeof value === "string") return maskText(value, extra);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, extra));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) ? REDACTED : redactValue(v, depth + 1, extra);
  }
  return out;
}

const redact = (extra: RegExp | null) =>
  winston.format((info) => {
    for (const key of Object.keys(info)) {
      info[key] = SECRET_FIELD.test(key) ? REDACTED : redactValue(info[key], 0, extra);
    }
    if (typeof info.message === "string") info.message = maskText(info.message, extra);
    return info;
  })();

const PRIORITY = winston.config.npm.levels as Record<LogLevel, number>;

const byModule = (settings: LogSettings) =>
  winston.format((info) => {
    const module = info.module as LogModule | undefined;
    const allowed = (module && settings.modules?.[module]) || settings.level;
    return (PRIORITY[info.level as LogLevel] ?? 0) <= PRIORITY[allowed] ? info : false;
  })();

export function createLogger(service: string, settings: LogSettings | LogLevel): Logger {
  const resolved = typeof settings === "string" ? { level: settings } : settings;
  const levels = [resolved.level, ...Object.values(resolved.modules ?? {})];
  const mostVerbose = levels.reduce((a, b) => (PRIORITY[b] > PRIORITY[a] ? b : a));
  return winston.createLogger({
    level: mostVerbose,
    defaultMeta: { service, pid: process.pid },
    format: winston.format.combine(
      // Without module levels, winston's own level check is the whole filter.
      ...(levels.length > 1 ? [byModule(resolved)] : []),
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      redact(extraMask(resolved)),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn"] })],
  });
}

/** `parent` for one module: its lines carry `module` and obey `log.modules[module]`. */
export function moduleLogger(parent: Logger, module: LogModule): Logger {
  return parent.child({ module });
}
