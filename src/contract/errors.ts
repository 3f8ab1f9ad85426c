/**
 * The one error shape of the HTTP API, and the error a service throws to produce it.
 *
 * Invariant: a response body for an error is always `{error:{code, message, retryable,
 * details?, trace_id?}}`; codes are stable snake_case strings clients may switch on.
 */
import { z } from "zod";

export const ErrorEnvelopeSchema = z
  .object({
    error: z.object({
      code: z.string().describe("stable, snake_case"),
      message: z.string(),
      retryable: z.boolean(),
      details: z.unknown().optional(),
      trace_id: z
        .string()
        .optional()
        .describe("the request's trace id (also in X-Trace-Id): quote it when reporting a problem"),
    }),
  })
  .meta({ id: "Error" });
export type ErrorEnvelope = z.infer<typeof ErrorEnvelopeSchema>;

export class FarmError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly options: { retryable?: boolean; details?: unknown; retryAfterS?: number } = {},
  ) {
    super(message);
    this.name = "FarmError";
  }

  toEnvelope(traceId?: string): ErrorEnvelope {
    return {
      error: {
        code: this.code,
        message: this.message,
        retryable: this.options.retryable ?? false,
        ...(this.options.details === undefined ? {} : { details: this.options.details }),
        ...(traceId ? { trace_id: traceId } : {}),
      },
    };
  }
}

export const notFound = (what: string, id: string) =>
  new FarmError(404, "not_found", `no ${what} with id "${id}"`);

export interface FieldIssue {
  field: string;
  message: string;
  code: string;
}

export const validationError = (issues: FieldIssue[]) =>
  new FarmError(400, "invalid_request", describeIssues(issues), { details: issues });

function describeIssues(issues: FieldIssue[]): string {
  const first = issues[0];
  if (!first) return "invalid request";
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : "";
  return `${first.field}: ${first.message}${more}`;
}

/** zod issues as field-level details (`field` is a dotted path, `(body)` for the root). */
export function fieldIssues(error: z.ZodError, prefix = ""): FieldIssue[] {
  return error.issues.map((issue) => ({
    field: [prefix, ...issue.path.map(String)].filter(Boolean).join(".") || "(body)",
    message: issue.message,
    code: issue.code,
  }));
}
