/**
 * The cold-storage format of one event bucket: `events_<bucket>.jsonl.gz` (one stored event per
 * line, gzip) and `events_<bucket>.manifest.json` (bucket, counts, first/last seq per session,
 * sha256 of the compressed file).
 *
 * Invariants:
 * - every run writes files of its own (`events_<bucket>.<run>.jsonl.gz`): two runs on one
 *   bucket (a stalled run and the one taking over) never overwrite each other's files; the
 *   store records which files the archive that counts is made of;
 * - files are written under a temporary name, flushed to disk (fsync, then the directory), and
 *   renamed into place only when complete, so a crash or power loss never leaves a truncated
 *   file under the final name, and the events are dropped only once the archive is durable;
 * - `verifyArchive` re-reads what is on disk — checksum, then every line — and compares it with
 *   the manifest; an archive is trusted only after it passes;
 * - each line carries the envelope string exactly as stored, so a restore is byte-identical.
 */
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createInterface } from "node:readline";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip, createGzip } from "node:zlib";
import { z } from "zod";
import { bucketTable } from "../buckets.js";
import type { StoredEvent } from "../ports/events.js";
import { eventFields, eventFromFields } from "../stored-shapes.js";

export const ARCHIVE_FORMAT = "wunder-farm.events.v1";

const SessionRangeSchema = z.object({
  session_id: z.string(),
  first_seq: z.number().int(),
  last_seq: z.number().int(),
  events: z.number().int(),
});

export const ManifestSchema = z.object({
  format: z.literal(ARCHIVE_FORMAT),
  bucket: z.string(),
  start_ms: z.number().int(),
  end_ms: z.number().int(),
  events: z.number().int(),
  sessions: z.array(SessionRangeSchema),
  file: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: z.number().int(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

const LineSchema = z.object({
  session_id: z.string(),
  seq: z.number().int().positive(),
  turn_id: z.string(),
  type: z.string(),
  ts: z.number().int(),
  envelope: z.string(),
});

export function archiveFileNames(bucket: string, run: string): { file: string; manifest: string } {
  const base = `${bucketTable(bucket)}.${run}`;
  return { file: `${base}.jsonl.gz`, manifest: `${base}.manifest.json` };
}

/** A short, time-ordered run id for file names: sorting the files sorts the runs. */
export function newArchiveRun(nowMs: number): string {
  return `${nowMs.toString(36)}${randomUUID().slice(0, 8)}`;
}

/** Tracks per-session ranges in export order (sessions arrive grouped, seqs ascending). */
class RangeTally {
  readonly sessions: z.infer<typeof SessionRangeSchema>[] = [];
  events = 0;

  add(event: StoredEvent): void {
    const last = this.sessions.at(-1);
    if (last?.session_id === event.sessionId) {
      last.last_seq = event.seq;
      last.events++;
    } else {
      this.sessions.push({
        session_id: event.sessionId,
        first_seq: event.seq,
        last_seq: event.seq,
        events: 1,
      });
    }
    this.events++;
  }
}

export interface BucketExport {
  bucket: string;
  startMs: number;
  endMs: number;
  /** Pages of the bucket's events in (session, seq) order. */
  pages: AsyncIterable<StoredEvent[]>;
}

/** Writes the bucket's archive and manifest into `dir` under run `run`; returns the manifest. */
export async function writeArchive(
  dir: string,
  run: string,
  source: BucketExport,
): Promise<Manifest> {
  await mkdir(dir, { recursive: true });
  const names = archiveFileNames(source.bucket, run);
  const temp = path.join(dir, `.${names.file}.tmp`);
  const tally = new RangeTally();
  const hash = createHash("sha256");
  const hashing = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      done(null, chunk);
    },
  });
  async function* lines(): AsyncIterable<string> {
    for await (const page of source.pages) {
      let text = "";
      for (const event of page) {
        tally.add(event);
        text += `${JSON.stringify(eventFields(event))}\n`;
      }
      yield text;
    }
  }
  try {
    // pipeline carries backpressure and tears every stage down on any error (disk full, …).
    await pipeline(Readable.from(lines()), createGzip(), hashing, createWriteStream(temp));
    await fsyncFile(temp);
    await rename(temp, path.join(dir, names.file));
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  const manifest: Manifest = {
    format: ARCHIVE_FORMAT,
    bucket: source.bucket,
    start_ms: source.startMs,
    end_ms: source.endMs,
    events: tally.events,
    sessions: tally.sessions,
    file: names.file,
    sha256: hash.digest("hex"),
    created_at: Date.now(),
  };
  const manifestTemp = path.join(dir, `.${names.manifest}.tmp`);
  await writeFile(manifestTemp, `${JSON.stringify(manifest, null, 2)}\n`);
  await fsyncFile(manifestTemp);
  await rename(manifestTemp, path.join(dir, names.manifest));
  await fsyncFile(dir);
  return manifest;
}

/** Removes a run's files (a run that lost its bucket to another, or failed). */
export async function removeArchive(dir: string, bucket: string, run: string): Promise<void> {
  const names = archiveFileNames(bucket, run);
  await Promise.all(
    [names.file, names.manifest].map((name) => rm(path.join(dir, name), { force: true })),
  );
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await open(file, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads the manifest named `manifestName` and checks it belongs to `bucket`. */
export async function readManifest(
  dir: string,
  bucket: string,
  manifestName: string,
): Promise<Manifest> {
  const file = path.join(dir, path.basename(manifestName));
  const parsed = ManifestSchema.safeParse(JSON.parse(await readFile(file, "utf8")));
  if (!parsed.success) {
    throw new ArchiveInvalidError(bucket, `manifest ${file} is not valid: ${parsed.error.message}`);
  }
  if (parsed.data.bucket !== bucket) {
    throw new ArchiveInvalidError(bucket, `manifest ${file} is for bucket ${parsed.data.bucket}`);
  }
  return parsed.data;
}

/** The archive does not match its manifest (or cannot be read). */
export class ArchiveInvalidError extends Error {
  constructor(
    readonly bucket: string,
    detail: string,
  ) {
    super(`archive of bucket ${bucket} failed verification: ${detail}`);
    this.name = "ArchiveInvalidError";
  }
}

/**
 * Reads the archive back in pages of `pageSize` events, checking every line and, at the end,
 * the checksum and the manifest's counts; throws ArchiveInvalidError on any mismatch. Pages are
 * handed to `onPage` as they are read (pass a no-op to only verify).
 */
export async function readArchive(
  dir: string,
  manifest: Manifest,
  pageSize: number,
  onPage: (events: StoredEvent[]) => Promise<void>,
): Promise<void> {
  const file = path.join(dir, path.basename(manifest.file));
  const fail = (detail: string) => new ArchiveInvalidError(manifest.bucket, detail);
  if ((await sha256Of(file)) !== manifest.sha256) throw fail(`sha256 of ${file} differs`);

  const tally = new RangeTally();
  let page: StoredEvent[] = [];
  const lines = createInterface({ input: createReadStream(file).pipe(createGunzip()) });
  for await (const line of lines) {
    if (line === "") continue;
    const parsed = LineSchema.safeParse(JSON.parse(line));
    if (!parsed.success) throw fail(`line ${tally.events + 1} is not a stored event`);
    const event = eventFromFields(parsed.data);
    tally.add(event);
    page.push(event);
    if (page.length >= pageSize) {
      await onPage(page);
      page = [];
    }
  }
  if (page.length > 0) await onPage(page);
  if (tally.events !== manifest.events) {
    throw fail(`${tally.events} events read, manifest says ${manifest.events}`);
  }
  if (JSON.stringify(tally.sessions) !== JSON.stringify(manifest.sessions)) {
    throw fail("per-session seq ranges differ from the manifest");
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}
