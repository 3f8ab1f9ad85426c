/**
 * What the store benchmarks share: the stores to measure (SQLite always, MongoDB when MONGO_URL
 * is set), a scratch directory per run, and realistic events (the envelope shape and size the
 * emitter writes: a coalesced LLM delta of ~160 chars is the most common event).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { Store, StoredEvent } from "../src/store/port.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";

export interface BenchStore {
  adapter: "sqlite" | "mongodb";
  open(): Promise<Store>;
  /** Frees what `open` made (the SQLite file's directory). */
  dispose(): Promise<void>;
}

/** A fresh, empty store of each adapter this machine can run. */
export async function benchStores(): Promise<BenchStore[]> {
  const dir = await mkdtemp(path.join(tmpdir(), "farm-bench-store-"));
  const stores: BenchStore[] = [
    {
      adapter: "sqlite",
      open: async () => SqliteStore.open(path.join(dir, "farm.sqlite")),
      dispose: () => rm(dir, { recursive: true, force: true }),
    },
  ];
  const mongoUrl = process.env.MONGO_URL;
  if (mongoUrl) {
    const { MongoStore } = await import("../src/store/mongo/mongo-store.js");
    stores.push({
      adapter: "mongodb",
      open: () => MongoStore.open(mongoUrl),
      dispose: async () => undefined,
    });
  }
  return stores;
}

const DELTA_TEXT = "The quick brown fox jumps over the lazy dog while the farm streams tokens. "
  .repeat(3)
  .slice(0, 160);

/** Event `seq` of a session, stamped `ts`, with the envelope bytes the emitter would write. */
export function benchEvent(sessionId: string, seq: number, ts: number): StoredEvent {
  const turnId = `${sessionId}-turn-${Math.ceil(seq / 40)}`;
  const envelope =
    `{"v":1,"seq":${seq},"session_id":"${sessionId}","turn_id":"${turnId}",` +
    `"user_id":"bench-user","type":"llm_output_delta","ts":${ts},` +
    `"data":{"model_round":1,"delta":${JSON.stringify(DELTA_TEXT)}}}`;
  return { sessionId, seq, turnId, type: "llm_output_delta", ts, envelope };
}

export function runId(): string {
  return `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
