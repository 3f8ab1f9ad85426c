/**
 * Artifacts on MongoDB (`artifacts`): metadata fields plus the content as binary data in the
 * same document (ARTIFACT_MAX_BYTES keeps it under the 16 MiB document limit).
 *
 * Invariants:
 * - an artifact is immutable: an insert that finds the id taken is ignored and the stored
 *   record is returned, so the first write wins;
 * - size and sha256 are computed from the content (artifactRecordOf), never taken from callers;
 * - listing never reads the content.
 */
import { artifactRecordOf } from "../artifact-content.js";
import type { ArtifactRecord, NewArtifact } from "../ports/artifacts.js";
import {
  type ArtifactDoc,
  type ArtifactMetaDoc,
  artifactFromDoc,
  bufferFromDoc,
} from "./documents.js";
import { isDuplicateKeyError } from "./driver-errors.js";
import type { MongoModels } from "./models.js";

const WITHOUT_CONTENT = { content: 0 } as const;

export class MongoArtifacts {
  constructor(private readonly models: MongoModels) {}

  async put(artifact: NewArtifact, content: Buffer): Promise<ArtifactRecord> {
    const record = artifactRecordOf(artifact, content);
    const doc: ArtifactDoc = {
      _id: record.id,
      session_id: record.sessionId,
      turn_id: record.turnId,
      user_id: record.userId,
      kind: record.kind,
      name: record.name,
      content_type: record.contentType,
      size_bytes: record.sizeBytes,
      sha256: record.sha256,
      content,
      created_at: record.createdAt,
    };
    try {
      await this.models.artifacts.insertMany([doc], { lean: true });
    } catch (err) {
      // The id is taken: artifacts are immutable, the stored one stands.
      if (!isDuplicateKeyError(err)) throw err;
    }
    const stored = await this.models.artifacts
      .findById(artifact.id, WITHOUT_CONTENT)
      .lean<ArtifactMetaDoc>();
    if (stored === null)
      throw new Error(`artifact ${artifact.id} is missing right after its write`);
    return artifactFromDoc(stored);
  }

  async get(id: string): Promise<{ record: ArtifactRecord; content: Buffer } | null> {
    const doc = await this.models.artifacts.findById(id).lean<ArtifactDoc>();
    return doc === null
      ? null
      : { record: artifactFromDoc(doc), content: bufferFromDoc(doc.content) };
  }

  async list(sessionId: string): Promise<ArtifactRecord[]> {
    const docs = await this.models.artifacts
      .find({ session_id: sessionId }, WITHOUT_CONTENT)
      .sort({ created_at: 1, _id: 1 })
      .lean<ArtifactMetaDoc[]>();
    return docs.map(artifactFromDoc);
  }
}
