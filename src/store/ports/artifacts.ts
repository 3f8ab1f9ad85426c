/**
 * Port part: artifacts — large tool outputs and attachments kept out of event rows; events carry
 * the artifact id instead of the bytes.
 *
 * Contract:
 * - an artifact is immutable: `putArtifact` with an id that exists keeps the first and returns it;
 * - `sha256` and `sizeBytes` are computed by the store from the content, never trusted from the caller;
 * - content larger than ARTIFACT_MAX_BYTES is refused with ArtifactTooLargeError.
 */

/** Under MongoDB's 16 MiB document limit with room for the metadata. */
export const ARTIFACT_MAX_BYTES = 15 * 1024 * 1024;

export interface NewArtifact {
  id: string;
  sessionId: string;
  turnId: string | null;
  userId: string;
  /** What produced it, e.g. "tool_output" or "attachment". */
  kind: string;
  name: string;
  contentType: string;
  createdAt: number;
}

export interface ArtifactRecord extends NewArtifact {
  sizeBytes: number;
  sha256: string;
}

export interface ArtifactStore {
  putArtifact(artifact: NewArtifact, content: Buffer): Promise<ArtifactRecord>;
  getArtifact(id: string): Promise<{ record: ArtifactRecord; content: Buffer } | null>;
  /** The session's artifacts without their content, oldest first. */
  listArtifacts(sessionId: string): Promise<ArtifactRecord[]>;
}
