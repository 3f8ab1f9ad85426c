/**
 * What the SQLite adapter promises beyond the store contract: its connection settings, its
 * schema version, and correctness when several OS processes write the same file at once.
 */
import { type ChildProcessByStdio, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { expect } from "chai";
import { openDatabase, SQLITE_BUSY_TIMEOUT_MS } from "../../src/store/sqlite/connection.js";
import { SCHEMA_VERSION } from "../../src/store/sqlite/schema.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { seqRange, storedEvent } from "./fixtures.js";

const CHILD_SCRIPT = fileURLToPath(new URL("./sqlite-race-child.ts", import.meta.url));
const RACE_PROCESSES = 3;
const RACE_ROUNDS = 1_000;
const RACE_BATCH_SIZE = 4;
const RACE_EVENTS_SESSION = "race-events";
/** What `PRAGMA synchronous` reads back as for NORMAL. */
const SQLITE_SYNCHRONOUS_NORMAL = 1;

type RaceChild = ChildProcessByStdio<Writable, Readable, null>;

interface ChildReport {
  createdKeys: string[];
  eventsInserted: number;
}

describe("SqliteStore (adapter specifics)", () => {
  let dir = "";
  let file = "";

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "farm-sqlite-"));
    file = path.join(dir, "farm.sqlite");
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("waits for another process's write lock without blocking the event loop", async () => {
    const store = SqliteStore.open(file);
    const holder = new Database(file);
    try {
      holder.prepare("BEGIN IMMEDIATE").run();
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 1);
      const writing = store.appendEvents([storedEvent("s-busy", 1)]);
      await new Promise((resolve) => setTimeout(resolve, 60));
      const ticksWhileLocked = ticks;
      holder.prepare("COMMIT").run();
      expect(await writing).to.equal(1);
      clearInterval(ticker);
      // A thread-blocking busy wait would have frozen the timer for the whole 60 ms.
      expect(ticksWhileLocked).to.be.greaterThan(10);
      expect((await store.readEvents("s-busy", 0, 10)).map((e) => e.seq)).to.deep.equal([1]);
    } finally {
      if (holder.inTransaction) holder.prepare("ROLLBACK").run();
      holder.close();
      await store.close();
    }
  });

  it("opens in WAL mode with NORMAL sync, a busy timeout, foreign keys and a stamped schema", () => {
    const db = openDatabase(file, "day");
    try {
      expect(db.pragma("journal_mode", { simple: true })).to.equal("wal");
      expect(db.pragma("synchronous", { simple: true })).to.equal(SQLITE_SYNCHRONOUS_NORMAL);
      expect(db.pragma("busy_timeout", { simple: true })).to.equal(SQLITE_BUSY_TIMEOUT_MS);
      expect(db.pragma("foreign_keys", { simple: true })).to.equal(1);
      expect(db.pragma("user_version", { simple: true })).to.equal(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });

  it("reopens an existing file without touching its data", async () => {
    const first = SqliteStore.open(file);
    await first.appendEvents([
      { sessionId: "s", seq: 1, turnId: "t", type: "queued", ts: 1, envelope: "{}" },
    ]);
    await first.close();
    const again = SqliteStore.open(file);
    try {
      expect(await again.maxSeq("s")).to.equal(1);
    } finally {
      await again.close();
    }
  });

  it("refuses a file stamped with a newer schema version", async () => {
    const db = new Database(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => SqliteStore.open(file)).to.throw(/newer than this build/);
  });

  it("migrates a version-1 file: its events move into bucket tables, byte for byte", async () => {
    const v1 = new Database(file);
    v1.exec(`CREATE TABLE events (
      session_id TEXT NOT NULL, seq INTEGER NOT NULL, turn_id TEXT NOT NULL, type TEXT NOT NULL,
      ts INTEGER NOT NULL, envelope TEXT NOT NULL, PRIMARY KEY (session_id, seq)) WITHOUT ROWID`);
    const events = [1, 2, 3].map((seq) =>
      storedEvent("s-v1", seq, "t", Date.UTC(2026, 0, 5) + (seq - 1) * 86_400_000),
    );
    const insert = v1.prepare("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)");
    for (const e of events) insert.run(e.sessionId, e.seq, e.turnId, e.type, e.ts, e.envelope);
    v1.pragma("user_version = 1");
    v1.close();

    const store = SqliteStore.open(file);
    try {
      expect(await store.readEvents("s-v1", 0, 10)).to.deep.equal(events);
      expect((await store.listBuckets()).map((b) => [b.name, b.events])).to.deep.equal([
        ["20260105", 1],
        ["20260106", 1],
        ["20260107", 1],
      ]);
    } finally {
      await store.close();
    }
    const db = new Database(file);
    expect(db.pragma("user_version", { simple: true })).to.equal(SCHEMA_VERSION);
    const legacy = db.prepare("SELECT name FROM sqlite_master WHERE name = 'events'").all();
    db.close();
    expect(legacy).to.deep.equal([]);
  });

  it("migrates a version-2 file: its turns gain the kind `agent`", async () => {
    const v2 = new Database(file);
    v2.exec(`CREATE TABLE sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
      created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
      CREATE TABLE turns (id TEXT PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(id),
      user_id TEXT NOT NULL, status TEXT NOT NULL, input TEXT NOT NULL, model TEXT NOT NULL,
      tools TEXT NOT NULL, metadata TEXT, idempotency_key TEXT, created_at INTEGER NOT NULL,
      started_at INTEGER, finished_at INTEGER, attempt INTEGER NOT NULL DEFAULT 0, answer TEXT,
      stop_reason TEXT, usage TEXT, error TEXT, first_seq INTEGER, last_seq INTEGER)`);
    v2.prepare("INSERT INTO sessions VALUES ('s-v2', 'u', 1, 1)").run();
    v2.prepare(
      "INSERT INTO turns (id, session_id, user_id, status, input, model, tools, created_at) VALUES ('t-v2', 's-v2', 'u', 'queued', 'hi', 'sim', '[]', 1)",
    ).run();
    v2.pragma("user_version = 2");
    v2.close();

    const store = SqliteStore.open(file);
    try {
      expect((await store.getTurn("t-v2"))?.kind).to.equal("agent");
      expect((await store.getTurn("t-v2"))?.input).to.equal("hi");
    } finally {
      await store.close();
    }
  });

  it("keeps one turn per key and every event exactly once across racing processes", async function () {
    this.timeout(60_000);
    const children = Array.from({ length: RACE_PROCESSES }, (_, i) => spawnChild(file, `p${i}`));
    const outputs = children.map(readLines);
    // Start them together, once every process has opened the (fresh) file.
    for (const output of outputs) expect(await output.next()).to.equal("ready");
    for (const child of children) child.stdin.write("go\n");
    const reports = await Promise.all(
      outputs.map(async (output) => JSON.parse(await output.next()) as ChildReport),
    );
    await Promise.all(children.map(exited));

    const created = reports.flatMap((r) => r.createdKeys).sort();
    const expectedKeys = seqRange(0, RACE_ROUNDS - 1).map((round) => `race-key-${round}`);
    expect(created).to.deep.equal(expectedKeys.sort());

    const totalEvents = RACE_ROUNDS * RACE_BATCH_SIZE;
    expect(reports.reduce((sum, r) => sum + r.eventsInserted, 0)).to.equal(totalEvents);
    const store = SqliteStore.open(file);
    try {
      const events = await store.readEvents(RACE_EVENTS_SESSION, 0, totalEvents + 10);
      expect(events.map((e) => e.seq)).to.deep.equal(seqRange(1, totalEvents));
      expect(await store.listStaleTurns(Number.MAX_SAFE_INTEGER, 10 * RACE_ROUNDS)).to.have.length(
        RACE_ROUNDS,
      );
    } finally {
      await store.close();
    }
  });
});

function spawnChild(file: string, name: string): RaceChild {
  const args = [String(RACE_ROUNDS), String(RACE_BATCH_SIZE)];
  return spawn(
    process.execPath,
    ["--import", "tsx", CHILD_SCRIPT, file, name, RACE_EVENTS_SESSION, ...args],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
}

/** Hands out a child's stdout one line at a time; rejects if it ends first. */
function readLines(child: RaceChild): { next(): Promise<string> } {
  const iterator = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async next() {
      const { value, done } = await iterator.next();
      if (done) throw new Error("child process ended before printing the expected line");
      return value;
    },
  };
}

async function exited(child: RaceChild): Promise<void> {
  if (child.exitCode === null) await once(child, "exit");
  expect(child.exitCode).to.equal(0);
}
