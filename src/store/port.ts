/**
 * The durable store every farm process talks to, as one port made of parts by concern:
 * sessions and turns, the bucketed event log and its lifecycle, snapshots, artifacts, approvals
 * and the audit log. Each part's contract is stated in its file under ./ports/.
 *
 * Adapters (SQLite embedded, MongoDB production) must pass test/store/contract.spec.ts.
 * General contract: all times are epoch milliseconds; a method either does all it says or
 * nothing; a store that cannot be reached rejects with StoreUnavailableError (./errors.ts).
 */
import type { ApprovalStore } from "./ports/approvals.js";
import type { ArtifactStore } from "./ports/artifacts.js";
import type { AuditStore } from "./ports/audit.js";
import type { BucketStore } from "./ports/buckets.js";
import type { EventStore } from "./ports/events.js";
import type { SnapshotStore } from "./ports/snapshots.js";
import type { TurnStore } from "./ports/turns.js";

export * from "./ports/approvals.js";
export * from "./ports/artifacts.js";
export * from "./ports/audit.js";
export * from "./ports/buckets.js";
export * from "./ports/events.js";
export * from "./ports/snapshots.js";
export * from "./ports/turns.js";

export interface Store
  extends TurnStore,
    EventStore,
    BucketStore,
    SnapshotStore,
    ArtifactStore,
    ApprovalStore,
    AuditStore {
  /** Resolves when the store answers; rejects otherwise (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
