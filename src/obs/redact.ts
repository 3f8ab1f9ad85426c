/**
 * What counts as a secret in text the farm writes out (logs, events, stored errors): bearer
 * tokens, provider API keys, and the values of fields named like credentials.
 */
export const SECRET_FIELD =
  /^(authorization|cookie|set-cookie|x-api-key|api_?key|apikey|password|secret|token)$/i;
const SECRET_TEXT = /\b(Bearer\s+[A-Za-z0-9._~+/-]+=*|sk-[A-Za-z0-9_-]{8,})/g;
export const REDACTED = "[redacted]";

/** `text` with every credential-looking run replaced by `[redacted]`. */
export function redactSecrets(text: string): string {
  return text.replace(SECRET_TEXT, REDACTED);
}
