/**
 * The data lifecycle of event buckets: archive the ones past retention to compressed JSONL in
 * the archive directory, restore one on request. Used by the archiver process, the admin routes
 * and the CLI alike.
 *
 * Invariants:
 * - a bucket's events are dropped only after its archive was written, read back and found equal
 *   to what was exported (checksum, every line, per-session ranges, count);
 * - each step is a compare-and-set on the bucket's status, so two archivers (or an archiver and
 *   an operator) cannot work on one bucket at once; a run that died midway is taken over once it
 *   has been stalled for STALLED_RUN_MS (`archiving` → export again, `restoring` → restore
 *   again: both steps are idempotent);
 * - a failed archive puts the bucket back to `active` with its events untouched; a failed
 *   restore puts it back to `archived`;
 * - every archive and restore is written to the audit log with the acting party.
 */

import path from "node:path";
import type { FarmConfig } from "../../config/schema.js";
import { checkEnvelopeText } from "../../events/schema-version.js";
import type { Logger } from "../../obs/logger.js";
import type { BucketRecord, Store, StoredEvent } from "../port.js";
import {
  ArchiveInvalidError,
  archiveFileNames,
  type Manifest,
  newArchiveRun,
  readArchive,
  readManifest,
  removeArchive,
  writeArchive,
} from "./archive-file.js";
import { archivedBuckets, archivedEvents, archivePassLastSuccess } from "./archive-metrics.js";
import { archiveBucketPastRetention, isStalledRun } from "./retention.js";

/** The archive directory under `dataDir` when `store.archiveDir` is not set. */
export const ARCHIVE_DIR_NAME = "archive";
/** Events per store read while exporting and per store write while restoring. */
const PAGE_EVENTS = 2_000;

/** The bucket is unknown (`not_found`) or not in a status that allows the operation (`conflict`). */
export class BucketLifecycleError extends Error {
  constructor(
    readonly kind: "not_found" | "conflict",
    message: string,
  ) {
    super(message);
    this.name = "BucketLifecycleError";
  }
}

export interface ArchiverSettings {
  archiveDir: string;
  /** 0 keeps buckets forever. */
  retentionDays: number;
}

export class BucketArchiver {
  constructor(
    private readonly store: Store,
    private readonly settings: ArchiverSettings,
    private readonly logger: Logger,
  ) {}

  /** Archives every bucket past retention (and resumes interrupted ones); returns their names. */
  async archiveDue(nowMs: number): Promise<string[]> {
    const due = (await this.store.listBuckets()).filter((b) =>
      archiveBucketPastRetention(b, this.settings.retentionDays, nowMs),
    );
    const archived: string[] = [];
    let failed = 0;
    const passStartedMs = Date.now();
    for (const bucket of due) {
      try {
        // Stamp each claim with the time it is made, not the pass's start: a long pass must not
        // make its own later claims look stalled.
        await this.archive(bucket.name, "archiver", nowMs + (Date.now() - passStartedMs));
        archived.push(bucket.name);
      } catch (err) {
        failed += 1;
        archivedBuckets.inc({ outcome: "failed" });
        this.logger.error("bucket archive failed; it stays in the store", {
          bucket: bucket.name,
          error: (err as Error).message,
        });
      }
    }
    if (failed === 0) archivePassLastSuccess.set(Date.now() / 1000);
    return archived;
  }

  /** Archives one closed bucket: export, verify, then drop its events. */
  async archive(name: string, actor: string, nowMs = Date.now()): Promise<BucketRecord> {
    const bucket = await this.claim(name, "archive", nowMs);
    const started = performance.now();
    const run = newArchiveRun(nowMs);
    const { archiveDir } = this.settings;
    let done: BucketRecord | null = null;
    let manifest: Manifest;
    try {
      manifest = await writeArchive(archiveDir, run, {
        bucket: name,
        startMs: bucket.startMs,
        endMs: bucket.endMs,
        pages: this.exportPages(name),
      });
      await readArchive(archiveDir, manifest, PAGE_EVENTS, async () => undefined);
      const names = archiveFileNames(name, run);
      done = await this.store.completeArchive(name, {
        file: names.file,
        manifest: names.manifest,
        sha256: manifest.sha256,
        events: manifest.events,
        archivedAt: nowMs,
      });
      if (done === null) {
        throw new BucketLifecycleError(
          "conflict",
          `bucket ${name} left "archiving" while being archived (another run finished it)`,
        );
      }
    } catch (err) {
      // Only this run's files go; the bucket is active again unless another run archived it.
      await removeArchive(archiveDir, name, run).catch(() => undefined);
      await this.store.setBucketStatus(name, "archiving", "active", nowMs).catch(() => null);
      throw err;
    }
    archivedBuckets.inc({ outcome: "archived" });
    archivedEvents.inc(manifest.events);
    await this.audit(actor, "bucket.archive", name, manifest, started);
    return done;
  }

  /**
   * Restores an archived bucket from the archive the store recorded for it (its files, checked
   * against the recorded sha256); it is then kept one more retention period.
   */
  async restore(name: string, actor: string, nowMs = Date.now()): Promise<BucketRecord> {
    const bucket = await this.claim(name, "restore", nowMs);
    const archive = bucket.archive;
    const started = performance.now();
    let manifest: Manifest;
    let done: BucketRecord | null;
    try {
      if (archive === null) throw new ArchiveInvalidError(name, "the store records no archive");
      manifest = await readManifest(this.settings.archiveDir, name, archive.manifest);
      if (manifest.sha256 !== archive.sha256 || manifest.events !== archive.events) {
        throw new ArchiveInvalidError(name, "the manifest is not the one the store recorded");
      }
      await readArchive(this.settings.archiveDir, manifest, PAGE_EVENTS, async (events) => {
        for (const event of events) checkEnvelopeText(event.envelope);
        await this.store.restoreEvents(name, events);
      });
      done = await this.store.setBucketStatus(name, "restoring", "active", nowMs);
      if (done === null) {
        throw new BucketLifecycleError(
          "conflict",
          `bucket ${name} left "restoring" while being restored`,
        );
      }
    } catch (err) {
      await this.store.setBucketStatus(name, "restoring", "archived", nowMs).catch(() => null);
      throw err;
    }
    await this.audit(actor, "bucket.restore", name, manifest, started);
    return done;
  }

  /** Moves the bucket into the working status of `op`, or resumes a run left in it. */
  private async claim(
    name: string,
    op: "archive" | "restore",
    nowMs: number,
  ): Promise<BucketRecord> {
    const [from, working] =
      op === "archive" ? (["active", "archiving"] as const) : (["archived", "restoring"] as const);
    const current = await this.store.getBucket(name);
    if (current === null)
      throw new BucketLifecycleError("not_found", `no event bucket named ${name}`);
    if (op === "archive" && current.endMs > nowMs) {
      throw new BucketLifecycleError(
        "conflict",
        `bucket ${name} is still open (it ends at ${new Date(current.endMs).toISOString()})`,
      );
    }
    if (current.status === working && isStalledRun(current, nowMs)) {
      // Take the stalled run over; the new timestamp tells others this run is alive.
      const taken = await this.store.setBucketStatus(name, working, working, nowMs);
      if (taken === null) {
        throw new BucketLifecycleError("conflict", `bucket ${name} changed while being taken over`);
      }
      return taken;
    }
    const claimed = await this.store.setBucketStatus(name, from, working, nowMs);
    if (claimed === null) {
      throw new BucketLifecycleError(
        "conflict",
        `bucket ${name} is ${current.status}; only an ${from} bucket can be ${op}d`,
      );
    }
    return claimed;
  }

  private async *exportPages(name: string): AsyncIterable<StoredEvent[]> {
    let after: StoredEvent | undefined;
    for (;;) {
      const page = await this.store.readBucketEvents(
        name,
        after ? { sessionId: after.sessionId, seq: after.seq } : null,
        PAGE_EVENTS,
      );
      if (page.length === 0) return;
      yield page;
      after = page.at(-1);
    }
  }

  private async audit(
    actor: string,
    action: string,
    bucket: string,
    manifest: Manifest,
    startedMs: number,
  ): Promise<void> {
    const details = {
      events: manifest.events,
      sessions: manifest.sessions.length,
      file: manifest.file,
      sha256: manifest.sha256,
      duration_ms: Math.round(performance.now() - startedMs),
    };
    this.logger.info(action === "bucket.archive" ? "bucket archived" : "bucket restored", {
      bucket,
      actor,
      ...details,
    });
    await this.store.appendAudit({
      ts: Date.now(),
      actor,
      action,
      subjectType: "bucket",
      subjectId: bucket,
      details,
    });
  }
}

/** The archiver settings a farm configuration gives. */
export function archiverSettingsOf(config: FarmConfig): ArchiverSettings {
  return {
    archiveDir: config.store.archiveDir ?? path.join(config.dataDir, ARCHIVE_DIR_NAME),
    retentionDays: config.store.retentionDays,
  };
}
