/**
 * Choosing the store from configuration: embedded SQLite by default, a clear refusal for MongoDB
 * until its adapter exists.
 */
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { ConfigSchema } from "../../src/config/schema.js";
import { openStore, SQLITE_DEFAULT_FILE_NAME } from "../../src/store/open.js";

describe("openStore", () => {
  let dir = "";

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "farm-open-store-"));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("opens SQLite under a not yet existing dataDir by default", async () => {
    const dataDir = path.join(dir, "nested", "data");
    const store = await openStore(ConfigSchema.parse({ dataDir }));
    try {
      await store.ping();
      await access(path.join(dataDir, SQLITE_DEFAULT_FILE_NAME));
    } finally {
      await store.close();
    }
  });

  it("opens SQLite at store.sqlitePath when set", async () => {
    const sqlitePath = path.join(dir, "elsewhere", "custom.sqlite");
    const config = ConfigSchema.parse({ dataDir: path.join(dir, "data"), store: { sqlitePath } });
    const store = await openStore(config);
    try {
      await store.ping();
      await access(sqlitePath);
    } finally {
      await store.close();
    }
  });

  it("refuses a MongoDB URL with a message that points at SQLite", async () => {
    const config = ConfigSchema.parse({
      dataDir: dir,
      store: { mongoUrl: "mongodb://127.0.0.1:27017/farm" },
    });
    let failure: unknown;
    try {
      await openStore(config);
    } catch (err) {
      failure = err;
    }
    expect(failure).to.be.instanceOf(Error);
    const message = (failure as Error).message;
    expect(message).to.match(/MongoDB store adapter is not available/);
    expect(message).to.match(/Unset MONGO_URL to use the embedded SQLite store/);
  });

  it("rejects ping once closed", async () => {
    const store = await openStore(ConfigSchema.parse({ dataDir: dir }));
    await store.close();
    let failed = false;
    await store.ping().catch(() => {
      failed = true;
    });
    expect(failed).to.equal(true);
  });
});
