/**
 * The audit log on MongoDB (`audit_log`): append-only documents keyed by ObjectId; the id handed
 * out is the ObjectId's hex string.
 *
 * Invariants:
 * - ids compare as strings in the order the ObjectIds do (fixed-width lowercase hex), and
 *   ObjectIds made by one process increase with every append (seconds, then a counter), so one
 *   writer's entries page in append order; entries appended by different processes within the
 *   same second are ordered by their process's random ObjectId part, not by arrival;
 * - an `afterId` that is not an id this log hands out pages from the start, as SQLite does.
 */
import { Types } from "mongoose";
import type { AuditEntry, AuditQuery, NewAuditEntry } from "../ports/audit.js";
import { type AuditDoc, auditFromDoc, jsonText } from "./documents.js";
import type { MongoModels } from "./models.js";

const OBJECT_ID_HEX = /^[0-9a-f]{24}$/i;

export class MongoAudit {
  constructor(private readonly models: MongoModels) {}

  async append(entry: NewAuditEntry): Promise<AuditEntry> {
    const doc: AuditDoc = {
      _id: new Types.ObjectId(),
      ts: entry.ts,
      actor: entry.actor,
      action: entry.action,
      subject_type: entry.subjectType,
      subject_id: entry.subjectId,
      details: jsonText(entry.details),
    };
    await this.models.audit.insertMany([doc], { lean: true });
    return auditFromDoc(doc);
  }

  async list(query: AuditQuery): Promise<AuditEntry[]> {
    if (query.limit <= 0) return [];
    const filter: { subject_id?: string; _id?: { $gt: Types.ObjectId } } = {};
    if (query.subjectId !== undefined) filter.subject_id = query.subjectId;
    if (query.afterId !== undefined && OBJECT_ID_HEX.test(query.afterId)) {
      filter._id = { $gt: new Types.ObjectId(query.afterId) };
    }
    const docs = await this.models.audit
      .find(filter)
      .sort({ _id: 1 })
      .limit(query.limit)
      .lean<AuditDoc[]>();
    return docs.map(auditFromDoc);
  }
}
