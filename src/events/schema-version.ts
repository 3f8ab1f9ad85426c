/**
 * Which schema versions of stored payloads this build can read, and the one check every reader
 * applies: known versions are accepted, an unknown (future) version is refused with an error
 * that names what, which version, and what this build reads — never misread as the current one.
 *
 * Versioned payloads (see docs/events.md for the compatibility matrix):
 * - the event envelope, field `v` (ENVELOPE_VERSION in ./envelope.ts);
 * - the `tool_result` event data, field `result_v` (TOOL_RESULT_VERSION); events written before
 *   that field existed carry none and are version 1.
 */

export const READABLE_ENVELOPE_VERSIONS: readonly number[] = [1];
/** 2 added `meta.attempts`, `original_chars`, `preview` and `artifact` (cut results). */
export const TOOL_RESULT_VERSION = 2;
export const READABLE_TOOL_RESULT_VERSIONS: readonly number[] = [1, 2];

export class UnsupportedSchemaVersionError extends Error {
  readonly code = "unsupported_schema_version";
  constructor(
    readonly payload: string,
    readonly version: unknown,
    readonly readable: readonly number[],
  ) {
    super(
      `${payload} has schema version ${JSON.stringify(version)}; this build reads ` +
        `version ${readable.join(", ")} — upgrade the farm to read it`,
    );
    this.name = "UnsupportedSchemaVersionError";
  }
}

export function checkEnvelopeVersion(v: unknown): number {
  return checkVersion("event envelope", v, READABLE_ENVELOPE_VERSIONS);
}

/**
 * The same check on envelope text: the emitter writes `v` first, so a readable envelope is
 * recognised by its prefix without parsing it; anything else is parsed and checked.
 */
export function checkEnvelopeText(envelope: string): void {
  for (const prefix of READABLE_PREFIXES) if (envelope.startsWith(prefix)) return;
  checkEnvelopeVersion((JSON.parse(envelope) as { v?: unknown }).v);
}

const READABLE_PREFIXES = READABLE_ENVELOPE_VERSIONS.map((v) => `{"v":${v},`);

export function checkToolResultVersion(resultV: unknown): number {
  return checkVersion("tool_result payload", resultV ?? 1, READABLE_TOOL_RESULT_VERSIONS);
}

function checkVersion(payload: string, version: unknown, readable: readonly number[]): number {
  if (typeof version !== "number" || !readable.includes(version)) {
    throw new UnsupportedSchemaVersionError(payload, version, readable);
  }
  return version;
}
