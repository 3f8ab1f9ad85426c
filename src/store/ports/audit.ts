/**
 * Port part: the audit log — who did what to which subject, append-only.
 *
 * Contract: entries are never changed or removed by the farm; `listAudit` pages in append order
 * with an opaque `afterId` cursor (ids compare as strings in append order).
 */

export interface NewAuditEntry {
  ts: number;
  /** Who acted: a user id, "admin", or a farm process such as "archiver". */
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  details: Record<string, unknown> | null;
}

export interface AuditEntry extends NewAuditEntry {
  id: string;
}

export interface AuditQuery {
  subjectId?: string;
  afterId?: string;
  limit: number;
}

export interface AuditStore {
  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  listAudit(query: AuditQuery): Promise<AuditEntry[]>;
}
