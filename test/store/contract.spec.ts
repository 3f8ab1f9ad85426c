/**
 * Runs the store contract against every adapter: SQLite always (a fresh temp file per test),
 * MongoDB whenever MONGO_URL points at a server (a fresh database per test); when it does not,
 * the output says the MongoDB part was skipped.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import mongoose from "mongoose";
import { MongoStore } from "../../src/store/mongo/mongo-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { runStoreContract } from "./contract.js";

describe("SqliteStore", () => {
  let dir = "";
  let file = "";

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "farm-store-contract-"));
    file = path.join(dir, "farm.sqlite");
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  runStoreContract("sqlite", async () => SqliteStore.open(file));
});

const MONGO_URL = process.env.MONGO_URL;

if (MONGO_URL) {
  describe("MongoStore", function () {
    this.timeout(30_000);
    let url = "";

    beforeEach(() => {
      // A database of its own per test, dropped afterwards.
      const parsed = new URL(MONGO_URL);
      parsed.pathname = `/farm_contract_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
      url = parsed.toString();
    });

    afterEach(async () => {
      const conn = await mongoose.createConnection(url).asPromise();
      await conn.dropDatabase();
      await conn.close();
    });

    runStoreContract("mongodb", () => MongoStore.open(url));
  });
} else {
  describe("MongoStore", () => {
    before(function () {
      console.log(
        "    MongoDB contract tests SKIPPED: MONGO_URL is not set (set it to a replica set to run them)",
      );
      this.skip();
    });

    it("passes the store contract");
  });
}
