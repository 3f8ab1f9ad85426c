/**
 * Choosing the store from configuration: embedded SQLite by default; with a MongoDB URL the
 * MongoDB adapter, which fails fast with a clear, credential-free error when nothing answers.
 */
import { access, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { ConfigSchema } from "../../src/config/schema.js";
import { StoreUnavailableError } from "../../src/store/errors.js";
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

  it("opens MongoDB for a MongoDB URL, and fails fast and clearly when nothing answers", async () => {
    // Port 1 on this host: connection refused at once, as when MongoDB is down.
    const config = ConfigSchema.parse({
      dataDir: dir,
      store: {
        mongoUrl: "mongodb://farm:s3cret-pw@127.0.0.1:1/farm",
        mongoServerSelectionTimeoutMs: 500,
      },
    });
    const started = Date.now();
    const failure = await openStore(config).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).to.be.instanceOf(StoreUnavailableError);
    const message = (failure as Error).message;
    expect(message).to.match(/MongoDB is unreachable/);
    expect(message).to.not.include("s3cret-pw");
    expect(Date.now() - started).to.be.lessThan(10_000);
    // Nothing fell back to SQLite.
    const sqlite = await access(path.join(dir, SQLITE_DEFAULT_FILE_NAME)).then(
      () => true,
      () => false,
    );
    expect(sqlite).to.equal(false);
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
