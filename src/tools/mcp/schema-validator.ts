/**
 * Argument validation of MCP tools against the JSON schema the server lists (ajv).
 *
 * Invariants:
 * - a schema is compiled at most once per `compile` call (the source calls it lazily, once per
 *   tool version) and released with `dispose`, so re-listed tools do not pile up in ajv;
 * - the dialect follows `$schema`: 2020-12 and 2019-09 get their own ajv; anything else is
 *   compiled as draft-07 (older `$schema` values are dropped rather than failing);
 * - a schema ajv cannot compile yields `null`: the tool is then called without validation;
 * - unknown keywords and formats are ignored (`strict: false`, no format checks): the server
 *   validates too, this is only a pre-check that tells the model what it got wrong;
 * - issues read `<path>: <message>`, the path dotted (`(arguments)` for the root).
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from "ajv";
import { Ajv2019 } from "ajv/dist/2019.js";
import { Ajv2020 } from "ajv/dist/2020.js";

const MAX_ISSUES = 20;

type AnyAjv = Ajv | Ajv2019 | Ajv2020;

export interface CompiledSchema {
  /** Issues of `value`; empty when it is valid. */
  check(value: unknown): string[];
  /** Releases the compiled schema. */
  dispose(): void;
}

const OPTIONS: Options = {
  strict: false,
  allErrors: true,
  validateFormats: false,
  addUsedSchema: false,
  logger: false,
};

export class SchemaValidators {
  private draft7: Ajv | null = null;
  private draft2019: Ajv2019 | null = null;
  private draft2020: Ajv2020 | null = null;

  compile(schema: Record<string, unknown>): CompiledSchema | null {
    const dialect = typeof schema.$schema === "string" ? schema.$schema : "";
    let ajv: AnyAjv;
    let input: Record<string, unknown> = schema;
    if (dialect.includes("2020-12")) ajv = this.draft2020 ??= new Ajv2020(OPTIONS);
    else if (dialect.includes("2019-09")) ajv = this.draft2019 ??= new Ajv2019(OPTIONS);
    else {
      ajv = this.draft7 ??= new Ajv(OPTIONS);
      const { $schema: _dialect, ...rest } = schema;
      input = rest;
    }
    let validate: ValidateFunction;
    try {
      validate = ajv.compile(input);
    } catch {
      return null;
    }
    return {
      check: (value) => (validate(value) ? [] : formatIssues(validate.errors ?? [])),
      dispose: () => {
        try {
          ajv.removeSchema(input);
        } catch {
          // not cached
        }
      },
    };
  }
}

export function formatIssues(errors: readonly ErrorObject[]): string[] {
  const issues = errors.slice(0, MAX_ISSUES).map((error) => {
    const path = error.instancePath
      .split("/")
      .slice(1)
      .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
      .join(".");
    let message = error.message ?? "is invalid";
    const extra = (error.params as { additionalProperty?: unknown }).additionalProperty;
    if (error.keyword === "additionalProperties" && typeof extra === "string") {
      message += `: '${extra}'`;
    }
    return `${path || "(arguments)"}: ${message}`;
  });
  if (errors.length > MAX_ISSUES) issues.push(`(and ${errors.length - MAX_ISSUES} more)`);
  return issues;
}
