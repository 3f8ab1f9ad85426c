/**
 * `loadConfig(env)`: schema defaults, environment variables (each mapped to its setting, empty
 * counting as unset), the built-in simulator model and a real model from `LLM_*`, a config file
 * named by `FARM_CONFIG` (JSON or YAML, below the environment), and `ConfigError` messages that
 * name what the operator wrote (env var or `<file>: a.b.c`) and show the bad value, but never a
 * secret. No process environment is read: every test passes its own env object.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { expect } from "chai";
import { ENV_SETTINGS } from "../../src/config/env.js";
import { ConfigError, loadConfig, usesSimulator } from "../../src/config/load.js";
import type { FarmConfig } from "../../src/config/schema.js";

const SECRET = "sk-test-SECRET-0123456789";

/** Runs `loadConfig` and returns the ConfigError it must throw. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

/** The value at a dotted path of the config. */
function at(config: FarmConfig, dotted: string): unknown {
  let node: unknown = config;
  for (const key of dotted.split(".")) node = (node as Record<string, unknown> | undefined)?.[key];
  return node;
}

describe("loadConfig", () => {
  describe("defaults", () => {
    it("runs with an empty environment on one machine with the simulator", () => {
      const config = loadConfig({});
      expect(config.api.port).to.equal(8080);
      expect(config.api.host).to.equal("0.0.0.0");
      expect(config.sim.port).to.equal(8090);
      expect(config.redis.url).to.equal("redis://127.0.0.1:6379");
      expect(config.redis.prefix).to.equal("farm");
      expect(config.dataDir).to.equal("./data");
      expect(config.store.mongoUrl).to.equal(undefined);
      expect(config.log.level).to.equal("info");
      expect(config.turn.defaultModel).to.equal("sim");
      expect(Object.keys(config.models)).to.deep.equal(["sim"]);
      expect(config.models.sim).to.include({
        baseUrl: "http://127.0.0.1:8090/v1",
        model: "farm-sim-1",
      });
      expect(usesSimulator(config)).to.equal(true);
    });

    it("points the sim model at the configured simulator port, and 0.0.0.0 at loopback", () => {
      const config = loadConfig({ SIM_PORT: "9191", SIM_HOST: "0.0.0.0" });
      expect(config.models.sim?.baseUrl).to.equal("http://127.0.0.1:9191/v1");
    });
  });

  describe("environment variables", () => {
    const cases: { env: string; value: string; path: string; expected: unknown }[] = [
      { env: "PORT", value: "8081", path: "api.port", expected: 8081 },
      { env: "API_HOST", value: "127.0.0.1", path: "api.host", expected: "127.0.0.1" },
      {
        env: "REDIS_URL",
        value: "rediss://r.example:6380",
        path: "redis.url",
        expected: "rediss://r.example:6380",
      },
      { env: "REDIS_PREFIX", value: "farm_2", path: "redis.prefix", expected: "farm_2" },
      { env: "DATA_DIR", value: "/var/lib/farm", path: "dataDir", expected: "/var/lib/farm" },
      {
        env: "SQLITE_PATH",
        value: "/tmp/f.sqlite",
        path: "store.sqlitePath",
        expected: "/tmp/f.sqlite",
      },
      { env: "WORKER_CONCURRENCY", value: "4", path: "worker.concurrency", expected: 4 },
      { env: "WORKER_MAX_STALLED_COUNT", value: "0", path: "worker.maxStalledCount", expected: 0 },
      {
        env: "SESSION_LEASE_TTL_MS",
        value: "5000",
        path: "worker.sessionLeaseTtlMs",
        expected: 5000,
      },
      { env: "MAX_ROUNDS", value: "3", path: "turn.maxRounds", expected: 3 },
      { env: "DELTA_FLUSH_MS", value: "0", path: "events.deltaFlushMs", expected: 0 },
      { env: "SIM_FAULT_RATE_429", value: "0.25", path: "sim.faultRate429", expected: 0.25 },
      { env: "FARM_WORKERS", value: "2", path: "launcher.workers", expected: 2 },
      { env: "LOG_LEVEL", value: "debug", path: "log.level", expected: "debug" },
      {
        env: "LOG_MODULE_LEVELS",
        value: '{"scheduler":"debug","tools":"warn"}',
        path: "log.modules",
        expected: { scheduler: "debug", tools: "warn" },
      },
      {
        env: "LOG_REDACT_PATTERNS",
        value: '["acct-[0-9]{6}"]',
        path: "log.redactPatterns",
        expected: ["acct-[0-9]{6}"],
      },
    ];

    for (const c of cases) {
      it(`${c.env}=${c.value} sets ${c.path}`, () => {
        expect(ENV_SETTINGS.find((s) => s.env === c.env)?.path.join(".")).to.equal(c.path);
        expect(at(loadConfig({}), c.path), "default differs").to.not.deep.equal(c.expected);
        expect(at(loadConfig({ [c.env]: c.value }), c.path)).to.deep.equal(c.expected);
      });
    }

    it("trims surrounding whitespace", () => {
      expect(loadConfig({ PORT: " 8082 " }).api.port).to.equal(8082);
      expect(loadConfig({ LOG_LEVEL: "warn\n" }).log.level).to.equal("warn");
    });

    it("counts empty values as unset", () => {
      const config = loadConfig({
        PORT: "",
        REDIS_URL: "   ",
        WORKER_CONCURRENCY: "",
        LOG_LEVEL: "",
        LLM_BASE_URL: "",
        DEFAULT_MODEL: " ",
        FARM_CONFIG: "",
      });
      expect(config.api.port).to.equal(8080);
      expect(config.redis.url).to.equal("redis://127.0.0.1:6379");
      expect(config.worker.concurrency).to.equal(32);
      expect(config.log.level).to.equal("info");
      expect(config.turn.defaultModel).to.equal("sim");
      expect(Object.keys(config.models)).to.deep.equal(["sim"]);
    });
  });

  describe("invalid values", () => {
    const cases: { env: string; value: string }[] = [
      { env: "WORKER_CONCURRENCY", value: "0" },
      { env: "WORKER_CONCURRENCY", value: "1.5" },
      { env: "WORKER_CONCURRENCY", value: "many" },
      { env: "PORT", value: "70000" },
      { env: "PORT", value: "notaport" },
      { env: "REDIS_URL", value: "http://x" },
      { env: "REDIS_PREFIX", value: "has space" },
      { env: "LOG_LEVEL", value: "loud" },
      { env: "SIM_FAULT_RATE_500", value: "1.5" },
    ];

    for (const c of cases) {
      it(`${c.env}=${c.value} is a ConfigError naming the variable and the value`, () => {
        const err = configError({ [c.env]: c.value });
        expect(err.problems).to.have.length(1);
        expect(err.problems[0]).to.match(new RegExp(`^${c.env}: `));
        expect(err.problems[0]).to.include(`(got "${c.value}")`);
        expect(err.message).to.include(c.env);
      });
    }

    it("names the module or pattern of a bad LOG_MODULE_LEVELS / LOG_REDACT_PATTERNS", () => {
      const level = configError({ LOG_MODULE_LEVELS: '{"scheduler":"loud"}' });
      expect(level.problems).to.have.length(1);
      expect(level.problems[0]).to.match(/^LOG_MODULE_LEVELS: log\.modules\.scheduler/);
      const module = configError({ LOG_MODULE_LEVELS: '{"nosuchmodule":"debug"}' });
      expect(module.problems[0]).to.match(/^LOG_MODULE_LEVELS: .*nosuchmodule/);
      const pattern = configError({ LOG_REDACT_PATTERNS: '["ok-[0-9]+", "acct-(unclosed"]' });
      expect(pattern.problems).to.have.length(1);
      expect(pattern.problems[0]).to.match(
        /^LOG_REDACT_PATTERNS.*1.*not a valid regular expression/,
      );
    });

    it("reports every invalid variable at once", () => {
      const err = configError({ PORT: "70000", LOG_LEVEL: "loud", REDIS_URL: "http://x" });
      expect(err.problems).to.have.length(3);
      for (const env of ["PORT", "LOG_LEVEL", "REDIS_URL"]) expect(err.message).to.include(env);
    });

    it("never shows the value of LLM_API_KEY", () => {
      const scenarios: Record<string, string>[] = [
        { LLM_API_KEY: SECRET, LLM_BASE_URL: "not a url", LLM_MODEL: "m" },
        { LLM_API_KEY: SECRET, LLM_BASE_URL: "https://api.example.com/v1" },
        { LLM_API_KEY: SECRET, LLM_BASE_URL: "ftp://api.example.com", PORT: "x" },
        { LLM_API_KEY: SECRET, LLM_BASE_URL: "https://a.example/v1", LLM_MODEL: "" },
        { LLM_API_KEY: SECRET, LLM_BASE_URL: "https://a.example/v1", LLM_TIMEOUT_MS: "-1" },
      ];
      for (const env of scenarios) {
        const err = configError(env);
        expect(err.message).to.not.include(SECRET);
        expect(err.message).to.not.include(SECRET.slice(0, 12));
      }
      const badUrl = configError({
        LLM_API_KEY: SECRET,
        LLM_BASE_URL: "not a url",
        LLM_MODEL: "m",
      });
      expect(badUrl.message).to.include("LLM_BASE_URL").and.include('(got "not a url")');
    });
  });

  describe("MCP_SERVERS", () => {
    it("configures MCP servers from JSON, with their defaults", () => {
      const config = loadConfig({
        MCP_SERVERS: JSON.stringify({
          files: { transport: "stdio", command: "npx", args: ["-y", "server"] },
          search: { transport: "http", url: "https://mcp.example.com/mcp", parallelSafe: true },
        }),
      });
      expect(config.tools.mcpServers.files).to.include({
        transport: "stdio",
        command: "npx",
        enabled: true,
        callTimeoutMs: 120_000,
      });
      expect(config.tools.mcpServers.search).to.include({ transport: "http", parallelSafe: true });
    });

    it("refuses text that is not JSON without echoing it (it may hold secrets)", () => {
      expect(() => loadConfig({ MCP_SERVERS: '{"x": {"headers": {"Authorization": "Bearer sk-1' }))
        .to.throw(ConfigError)
        .with.property("message")
        .that.matches(/MCP_SERVERS: not valid JSON/)
        .and.not.contains("sk-1");
    });

    it("names the server and the field of an invalid server", () => {
      expect(() =>
        loadConfig({ MCP_SERVERS: JSON.stringify({ files: { transport: "stdio" } }) }),
      ).to.throw(/MCP_SERVERS: tools\.mcpServers\.files.*command/);
      expect(() =>
        loadConfig({
          MCP_SERVERS: JSON.stringify({ "bad name!": { transport: "stdio", command: "x" } }),
        }),
      ).to.throw(/MCP_SERVERS: tools\.mcpServers\.bad name!: Invalid key/);
    });
  });

  describe("models", () => {
    it("LLM_BASE_URL without LLM_MODEL is an error naming LLM_MODEL", () => {
      const err = configError({ LLM_BASE_URL: "https://api.example.com/v1" });
      expect(err.problems).to.have.length(1);
      expect(err.problems[0]).to.match(/^LLM_MODEL: /);
    });

    it("LLM_BASE_URL + LLM_MODEL configure `default` and make it the default model", () => {
      const config = loadConfig({
        LLM_BASE_URL: "https://api.example.com/v1",
        LLM_MODEL: "gpt-x",
        LLM_API_KEY: SECRET,
        LLM_MAX_OUTPUT_TOKENS: "1000",
      });
      expect(config.turn.defaultModel).to.equal("default");
      expect(config.models.default).to.include({
        baseUrl: "https://api.example.com/v1",
        model: "gpt-x",
        apiKey: SECRET,
        maxOutputTokens: 1000,
      });
      // No simulator runs beside a real default model, so none is offered.
      expect(config.models.sim).to.equal(undefined);
      expect(usesSimulator(config)).to.equal(false);
    });

    it("LLM_MODEL without LLM_BASE_URL is an error naming LLM_BASE_URL", () => {
      const err = configError({ LLM_MODEL: "gpt-x" });
      expect(err.problems).to.have.length(1);
      expect(err.problems[0]).to.match(/^LLM_BASE_URL\b/);
    });

    it("DEFAULT_MODEL still picks the default when LLM_BASE_URL is set", () => {
      const config = loadConfig({
        LLM_BASE_URL: "https://api.example.com/v1",
        LLM_MODEL: "gpt-x",
        DEFAULT_MODEL: "sim",
      });
      expect(config.turn.defaultModel).to.equal("sim");
      expect(config.models.default?.model).to.equal("gpt-x");
    });

    it("DEFAULT_MODEL naming no model is an error", () => {
      const err = configError({ DEFAULT_MODEL: "nope" });
      expect(err.message).to.include("DEFAULT_MODEL").and.include('"nope"');
    });
  });

  describe("config file (FARM_CONFIG)", () => {
    let dir = "";

    before(async () => {
      dir = await mkdtemp(path.join(tmpdir(), "farm-config-"));
    });

    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    async function file(name: string, content: string): Promise<string> {
      const at = path.join(dir, name);
      await writeFile(at, content);
      return at;
    }

    it("applies nested keys from a JSON file", async () => {
      const json = await file(
        "nested.json",
        JSON.stringify({
          api: { port: 9001 },
          worker: { concurrency: 3 },
          models: { gpt: { baseUrl: "https://api.example.com/v1", model: "gpt-x" } },
          turn: { defaultModel: "gpt" },
        }),
      );
      const config = loadConfig({ FARM_CONFIG: json });
      expect(config.api.port).to.equal(9001);
      expect(config.worker.concurrency).to.equal(3);
      expect(config.worker.lockDurationMs, "siblings keep their defaults").to.equal(30_000);
      expect(config.turn.defaultModel).to.equal("gpt");
      expect(config.models.gpt?.model).to.equal("gpt-x");
      expect(config.models.sim, "no simulator beside a real default model").to.equal(undefined);
    });

    it("applies nested keys from a YAML file", async () => {
      const yaml = await file(
        "nested.yaml",
        ["api:", "  port: 9002", "log:", "  level: warn", "sim:", "  port: 9393", ""].join("\n"),
      );
      const config = loadConfig({ FARM_CONFIG: yaml });
      expect(config.api.port).to.equal(9002);
      expect(config.log.level).to.equal("warn");
      expect(config.models.sim?.baseUrl).to.equal("http://127.0.0.1:9393/v1");
    });

    it("lets the environment win over the file", async () => {
      const json = await file(
        "override.json",
        JSON.stringify({ api: { port: 9001 }, WORKER_CONCURRENCY: 3, log: { level: "warn" } }),
      );
      const config = loadConfig({ FARM_CONFIG: json, PORT: "9005", WORKER_CONCURRENCY: "7" });
      expect(config.api.port).to.equal(9005);
      expect(config.worker.concurrency).to.equal(7);
      expect(config.log.level, "untouched by env").to.equal("warn");
    });

    it("applies env-style UPPER keys in the file", async () => {
      const yaml = await file(
        "upper.yml",
        ["PORT: 9003", "LOG_LEVEL: debug", "REDIS_PREFIX: from-file", ""].join("\n"),
      );
      const config = loadConfig({ FARM_CONFIG: yaml });
      expect(config.api.port).to.equal(9003);
      expect(config.log.level).to.equal("debug");
      expect(config.redis.prefix).to.equal("from-file");
    });

    it("reads MCP servers nested, or under MCP_SERVERS as an object or as JSON text", async () => {
      const server = { transport: "stdio", command: "mcp-server", args: ["--x"] };
      const nested = await file(
        "mcp.yaml",
        `tools:\n  mcpServers:\n    fs:\n      transport: stdio\n      command: mcp-server\n`,
      );
      expect(loadConfig({ FARM_CONFIG: nested }).tools.mcpServers.fs).to.include({
        transport: "stdio",
        command: "mcp-server",
      });
      const asObject = await file(
        "mcp-object.json",
        JSON.stringify({ MCP_SERVERS: { fs: server } }),
      );
      expect(loadConfig({ FARM_CONFIG: asObject }).tools.mcpServers.fs).to.deep.include({
        args: ["--x"],
      });
      const asText = await file(
        "mcp-text.json",
        JSON.stringify({ MCP_SERVERS: JSON.stringify({ fs: server }) }),
      );
      expect(loadConfig({ FARM_CONFIG: asText }).tools.mcpServers.fs).to.include({
        command: "mcp-server",
      });
    });

    it("names `<file>: a.b.c` for an invalid nested value", async () => {
      const json = await file(
        "bad-nested.json",
        JSON.stringify({
          worker: { concurrency: 0 },
          models: { m: { baseUrl: "nope", model: "x" } },
        }),
      );
      const err = configError({ FARM_CONFIG: json });
      expect(err.problems).to.have.length(2);
      expect(err.message).to.include("bad-nested.json: worker.concurrency");
      expect(err.message).to.include("bad-nested.json: models.m.baseUrl");
    });

    it("names `<file>: KEY` for an invalid env-style key in the file", async () => {
      const yaml = await file("bad-upper.yaml", "LOG_LEVEL: loud\n");
      const err = configError({ FARM_CONFIG: yaml });
      expect(err.problems).to.have.length(1);
      expect(err.problems[0]).to.match(/^bad-upper\.yaml: LOG_LEVEL: /);
    });

    it("reports an invalid env value over a valid file value under the env name", async () => {
      const json = await file("ok.json", JSON.stringify({ api: { port: 9001 } }));
      const err = configError({ FARM_CONFIG: json, PORT: "70000" });
      expect(err.problems[0]).to.match(/^PORT: /);
    });

    it("a missing file is a ConfigError naming FARM_CONFIG", async () => {
      const missing = path.join(dir, "does-not-exist.json");
      const err = configError({ FARM_CONFIG: missing });
      expect(err.message).to.include("FARM_CONFIG").and.include(missing);
    });

    it("an unparseable JSON or YAML file is a ConfigError naming FARM_CONFIG", async () => {
      const json = await file("broken.json", '{"api": {"port": 9001');
      const yaml = await file("broken.yaml", "api:\n  port: [1\n");
      for (const broken of [json, yaml]) {
        expect(configError({ FARM_CONFIG: broken }).message).to.include("FARM_CONFIG");
      }
    });

    it("a file holding something other than an object is a ConfigError naming FARM_CONFIG", async () => {
      const list = await file("list.json", "[1, 2]");
      expect(configError({ FARM_CONFIG: list }).message)
        .to.include("FARM_CONFIG")
        .and.include("must hold an object");
    });

    it("LLM_BASE_URL + LLM_MODEL in the file make `default` the default model", async () => {
      const json = await file(
        "llm-upper.json",
        JSON.stringify({ LLM_BASE_URL: "https://api.example.com/v1", LLM_MODEL: "gpt-x" }),
      );
      const config = loadConfig({ FARM_CONFIG: json });
      expect(config.models.default?.model).to.equal("gpt-x");
      expect(config.turn.defaultModel).to.equal("default");
    });

    it("does not echo file content (e.g. an API key) in a parse error", async () => {
      const json = await file("leaky.json", `{"LLM_API_KEY": ${SECRET}}`);
      const yaml = await file("leaky.yaml", `models:\n  default:\n    apiKey: ${SECRET}: x\n`);
      const messages = [json, yaml].map((f) => configError({ FARM_CONFIG: f }).message);
      for (const message of messages) expect(message).to.include("FARM_CONFIG");
      expect(messages.filter((m) => m.includes(SECRET.slice(0, 8)))).to.deep.equal([]);
    });
  });
});
