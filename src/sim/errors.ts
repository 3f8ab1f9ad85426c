/**
 * Error replies in OpenAI's exact shape, `{"error":{"message","type","param","code"}}`, so clients
 * classify simulated failures the way they classify a real provider's.
 */
import type { ServerResponse } from "node:http";

export interface ErrorReply {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export function openAiError(
  status: number,
  message: string,
  type: string,
  param: string | null,
  code: string | null,
  headers: Record<string, string> = {},
): ErrorReply {
  return { status, body: JSON.stringify({ error: { message, type, param, code } }), headers };
}

export function invalidRequest(message: string, param: string | null): ErrorReply {
  return openAiError(400, message, "invalid_request_error", param, null);
}

export function unknownRoute(method: string, path: string): ErrorReply {
  return openAiError(
    404,
    `Invalid URL (${method} ${path})`,
    "invalid_request_error",
    null,
    "unknown_url",
  );
}

export function bodyTooLarge(maxBytes: number): ErrorReply {
  return openAiError(
    413,
    `The request body exceeds the limit of ${maxBytes} bytes.`,
    "invalid_request_error",
    null,
    "request_too_large",
  );
}

export function rateLimited(retryAfterS: number): ErrorReply {
  return openAiError(
    429,
    "Rate limit reached for requests",
    "requests",
    null,
    "rate_limit_exceeded",
    { "retry-after": String(retryAfterS) },
  );
}

export function serverError(): ErrorReply {
  return openAiError(
    500,
    "The server had an error while processing your request.",
    "server_error",
    null,
    null,
  );
}

export function contextLengthExceeded(windowTokens: number, promptTokens: number): ErrorReply {
  return openAiError(
    400,
    `This model's maximum context length is ${windowTokens} tokens. However, your messages resulted in ${promptTokens} tokens. Please reduce the length of the messages.`,
    "invalid_request_error",
    "messages",
    "context_length_exceeded",
  );
}

export function sendError(res: ServerResponse, error: ErrorReply): void {
  res.writeHead(error.status, {
    ...error.headers,
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(error.body)),
  });
  res.end(error.body);
}
