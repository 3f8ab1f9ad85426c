/**
 * winston JSON logs for every process. Context (user_id, session_id, turn_id, tool…) travels by
 * child loggers, so every line of a turn carries it without the caller repeating it.
 *
 * Invariant: nothing that looks like a credential reaches a transport (see `redact`).
 */
import winston from "winston";
import { REDACTED, redactSecrets, SECRET_FIELD } from "./redact.js";

function redactValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return redactSecrets(value);
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_FIELD.test(k) ? REDACTED : redactValue(v, depth + 1);
  }
  return out;
}

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    info[key] = SECRET_FIELD.test(key) ? REDACTED : redactValue(info[key], 0);
  }
  if (typeof info.message === "string") info.message = redactSecrets(info.message);
  return info;
});

export type Logger = winston.Logger;

export function createLogger(service: string, level: string): Logger {
  return winston.createLogger({
    level,
    defaultMeta: { service, pid: process.pid },
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: true }),
      redact(),
      winston.format.json(),
    ),
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn"] })],
  });
}
