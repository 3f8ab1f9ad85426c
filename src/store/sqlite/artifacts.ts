/**
 * Artifacts on SQLite: metadata columns plus the content as a BLOB in the same row (`artifacts`).
 * Insert-or-ignore on the id keeps artifacts immutable.
 */
import type Database from "better-sqlite3";
import { artifactRecordOf } from "../artifact-content.js";
import type { ArtifactRecord, NewArtifact } from "../ports/artifacts.js";
import { type ArtifactFields, artifactFromFields } from "../stored-shapes.js";

const META_COLUMNS =
  "id, session_id, turn_id, user_id, kind, name, content_type, size_bytes, sha256, created_at";

export class SqliteArtifacts {
  private readonly sql;

  constructor(db: Database.Database) {
    this.sql = {
      insert: db.prepare<[ArtifactRecord & { content: Buffer }]>(
        `INSERT OR IGNORE INTO artifacts (${META_COLUMNS}, content)
         VALUES (@id, @sessionId, @turnId, @userId, @kind, @name, @contentType, @sizeBytes,
                 @sha256, @createdAt, @content)`,
      ),
      get: db.prepare<[string], ArtifactFields & { content: Buffer }>(
        `SELECT ${META_COLUMNS}, content FROM artifacts WHERE id = ?`,
      ),
      getMeta: db.prepare<[string], ArtifactFields>(
        `SELECT ${META_COLUMNS} FROM artifacts WHERE id = ?`,
      ),
      list: db.prepare<[string], ArtifactFields>(
        `SELECT ${META_COLUMNS} FROM artifacts WHERE session_id = ? ORDER BY created_at, id`,
      ),
    };
  }

  put(artifact: NewArtifact, content: Buffer): ArtifactRecord {
    const record = artifactRecordOf(artifact, content);
    this.sql.insert.run({ ...record, content });
    return artifactFromFields(this.sql.getMeta.get(artifact.id) as ArtifactFields);
  }

  get(id: string): { record: ArtifactRecord; content: Buffer } | null {
    const row = this.sql.get.get(id);
    return row === undefined ? null : { record: artifactFromFields(row), content: row.content };
  }

  list(sessionId: string): ArtifactRecord[] {
    return this.sql.list.all(sessionId).map(artifactFromFields);
  }
}
