/**
 * Builds the validated FarmConfig from (lowest to highest precedence) schema defaults,
 * an optional config file (`FARM_CONFIG`, JSON or YAML) and environment variables.
 *
 * Invariants:
 * - an invalid value is reported under the name the operator wrote it with (the env var, or
 *   `<file>: a.b.c`), never as a stack trace;
 * - an empty environment variable counts as unset;
 * - when no real model is configured, the built-in simulator is the `sim` model.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { parse as parseYaml } from "yaml";
import type { z } from "zod";
import { ENV_SETTINGS, type EnvSetting, REAL_MODEL_NAME, setPath } from "./env.js";
import { ConfigSchema, type FarmConfig, ModelConfigSchema, SIM_MODEL_NAME } from "./schema.js";

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

type Env = Record<string, string | undefined>;

/** Where each raw value came from, keyed by its dotted path in the schema. */
type Provenance = Map<string, string>;

/** Names whose values are never echoed in an error. */
const SECRET_NAME = /API_KEY|SECRET|PASSWORD|(^|_)TOKEN$/;

export function loadConfig(env: Env = process.env): FarmConfig {
  const shown = (source: string) => {
    const value = env[source];
    return value === undefined || SECRET_NAME.test(source) ? "" : ` (got "${hideUserinfo(value)}")`;
  };
  const raw: Record<string, unknown> = {};
  const provenance: Provenance = new Map();

  const file = env.FARM_CONFIG?.trim();
  if (file) mergeFile(raw, provenance, file);
  for (const setting of ENV_SETTINGS) applyEnv(raw, provenance, setting, env);
  applyRealModel(raw, provenance);

  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error, provenance, shown));
  return withSimulatorModel(parsed.data);
}

function mergeFile(raw: Record<string, unknown>, provenance: Provenance, file: string): void {
  let content: unknown;
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([
      `FARM_CONFIG (${file}): ${(err as NodeJS.ErrnoException).code ?? "unreadable"}`,
    ]);
  }
  try {
    content = file.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    // Parsers quote the text around the error, which may be a secret: report the place only.
    throw new ConfigError([
      `FARM_CONFIG (${file}): not valid ${file.endsWith(".json") ? "JSON" : "YAML"}${where(err)}`,
    ]);
  }
  if (content === null || typeof content !== "object" || Array.isArray(content)) {
    throw new ConfigError([`FARM_CONFIG (${file}): must hold an object`]);
  }
  const label = path.basename(file);
  for (const [key, value] of Object.entries(content)) {
    const setting = ENV_SETTINGS.find((s) => s.env === key);
    if (setting) {
      // A file may also use the environment names; the real environment still wins. A JSON
      // setting may be written as the object itself or as its JSON text.
      setPath(
        raw,
        setting.path,
        setting.json ? jsonValue(value, `${label}: ${key}`) : String(value),
      );
      provenance.set(setting.path.join("."), `${label}: ${key}`);
    } else {
      raw[key] = value;
      recordProvenance(provenance, [key], value, label);
    }
  }
}

function recordProvenance(provenance: Provenance, at: string[], value: unknown, label: string) {
  provenance.set(at.join("."), `${label}: ${at.join(".")}`);
  if (value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) recordProvenance(provenance, [...at, k], v, label);
  }
}

function applyEnv(raw: Record<string, unknown>, provenance: Provenance, s: EnvSetting, env: Env) {
  const value = env[s.env];
  if (value === undefined || value.trim() === "") return;
  const parsed = s.json ? jsonValue(value, s.env) : value.trim();
  setPath(raw, s.path, parsed);
  if (s.json) recordProvenance(provenance, s.path, parsed, s.env);
  provenance.set(s.path.join("."), s.env);
}

/**
 * `LLM_BASE_URL` (+ `LLM_MODEL`, `LLM_API_KEY`, …), from the environment or the file, configures
 * the model named `default` and makes it the default model unless `DEFAULT_MODEL` says otherwise.
 * A setting the group lacks is reported under its variable name, e.g. `LLM_MODEL: required`.
 */
function applyRealModel(raw: Record<string, unknown>, provenance: Provenance) {
  const group = ENV_SETTINGS.filter((s) => s.path[0] === "models" && s.path[1] === REAL_MODEL_NAME);
  const given = group.filter((s) => provenance.has(s.path.join(".")));
  if (given.length === 0) return;
  for (const s of group)
    if (!provenance.has(s.path.join("."))) provenance.set(s.path.join("."), s.env);
  const models = raw.models as Record<string, Record<string, unknown>> | undefined;
  const turn = raw.turn as Record<string, unknown> | undefined;
  if (models?.[REAL_MODEL_NAME]?.baseUrl !== undefined && turn?.defaultModel === undefined) {
    setPath(raw, ["turn", "defaultModel"], REAL_MODEL_NAME);
  }
}

/** A JSON setting's value: an object as is, text parsed. */
function jsonValue(value: unknown, label: string): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch (err) {
    // The text may hold secrets (MCP headers, env): report the place, not the content.
    throw new ConfigError([`${label}: not valid JSON${where(err)}`]);
  }
}

/** `redis://user:secret@host` → `redis://…@host`, for error messages. */
function hideUserinfo(value: string): string {
  return value.replace(/\/\/[^/@\s]*@/, "//…@");
}

function where(err: unknown): string {
  const yamlPos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0];
  if (yamlPos) return ` (line ${yamlPos.line}, column ${yamlPos.col})`;
  const jsonPos = /position (\d+)/.exec((err as Error).message)?.[1];
  return jsonPos ? ` (at character ${jsonPos})` : "";
}

function describeIssues(
  error: z.ZodError,
  provenance: Provenance,
  shown: (source: string) => string,
): string[] {
  return error.issues.map((issue) => {
    const at = issue.path.map(String);
    // Report under the longest path prefix we know the origin of (e.g. a whole model block).
    for (let n = at.length; n > 0; n--) {
      const source = provenance.get(at.slice(0, n).join("."));
      if (source) {
        const rest = at.slice(n).join(".");
        return `${source}${rest ? ` (${rest})` : ""}: ${issue.message}${shown(source)}`;
      }
    }
    return `${at.join(".") || "(root)"}: ${issue.message}`;
  });
}

/**
 * The simulator is a model like any other, reached over HTTP on its configured port. It is
 * registered when it is the default model (then `npm start` runs it), not beside a real model:
 * a request naming it would wait on a simulator nobody started.
 */
function withSimulatorModel(config: FarmConfig): FarmConfig {
  const simHost = config.sim.host === "0.0.0.0" ? "127.0.0.1" : config.sim.host;
  const models: FarmConfig["models"] = { ...config.models };
  if (usesSimulator(config) && !Object.hasOwn(models, SIM_MODEL_NAME)) {
    models[SIM_MODEL_NAME] = ModelConfigSchema.parse({
      baseUrl: `http://${simHost}:${config.sim.port}/v1`,
      apiKey: "sim",
      model: "farm-sim-1",
      contextWindowTokens: config.sim.contextWindowTokens,
      // A small simulated window keeps room for prompts: at most a quarter goes to the answer.
      maxOutputTokens: Math.min(4_096, Math.floor(config.sim.contextWindowTokens / 4)),
    });
  }
  if (!Object.hasOwn(models, config.turn.defaultModel)) {
    throw new ConfigError([`DEFAULT_MODEL: no model named "${config.turn.defaultModel}"`]);
  }
  return { ...config, models };
}

/** True when the default model is the built-in simulator, so `npm start` must run it. */
export function usesSimulator(config: FarmConfig): boolean {
  return config.turn.defaultModel === SIM_MODEL_NAME;
}
