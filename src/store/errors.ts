/**
 * Errors the store port raises that callers act on (the API maps them to statuses).
 */

/** A read needs events from buckets that are archived (or being restored). */
export class EventsArchivedError extends Error {
  readonly code = "events_archived";
  constructor(
    readonly sessionId: string,
    /** The unreadable buckets the range touches, with the seqs each holds for the session. */
    readonly ranges: { bucket: string; firstSeq: number; lastSeq: number }[],
  ) {
    const list = ranges.map((r) => `${r.bucket} (seq ${r.firstSeq}–${r.lastSeq})`).join(", ");
    super(
      `events of session ${sessionId} in ${list} are archived; restore the bucket to read them`,
    );
    this.name = "EventsArchivedError";
  }

  /** Where a reader can go on from: past every range this error names. */
  get resumeAfter(): number {
    return Math.max(0, ...this.ranges.map((r) => r.lastSeq));
  }
}

/** The store cannot be reached (or did not answer in time); the operation changed nothing. */
export class StoreUnavailableError extends Error {
  readonly code = "store_unavailable";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailableError";
  }
}

/** Artifact content over ARTIFACT_MAX_BYTES. */
export class ArtifactTooLargeError extends Error {
  readonly code = "artifact_too_large";
  constructor(
    readonly sizeBytes: number,
    readonly maxBytes: number,
  ) {
    super(`artifact of ${sizeBytes} bytes exceeds the ${maxBytes}-byte limit`);
    this.name = "ArtifactTooLargeError";
  }
}
