/**
 * What every adapter computes from an artifact's bytes before storing them: the size limit check
 * and the digest, so records never trust sizes or hashes a caller claims.
 */
import { createHash } from "node:crypto";
import { ArtifactTooLargeError } from "./errors.js";
import { ARTIFACT_MAX_BYTES, type ArtifactRecord, type NewArtifact } from "./ports/artifacts.js";

export function artifactRecordOf(artifact: NewArtifact, content: Buffer): ArtifactRecord {
  if (content.byteLength > ARTIFACT_MAX_BYTES) {
    throw new ArtifactTooLargeError(content.byteLength, ARTIFACT_MAX_BYTES);
  }
  return {
    ...artifact,
    sizeBytes: content.byteLength,
    sha256: createHash("sha256").update(content).digest("hex"),
  };
}
