/**
 * The farm's logger: per-module levels (`log.modules`) over the process level, and masking of
 * configured patterns and of the secrets the configuration holds, on top of the built-in rules.
 */
import { expect } from "chai";
import Transport from "winston-transport";
import { loadConfig } from "../../src/config/load.js";
import { createLogger, type Logger, logSettingsOf, moduleLogger } from "../../src/obs/logger.js";

class Capture extends Transport {
  readonly lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)));
    next();
  }
}

function captured(logger: Logger): Capture {
  const capture = new Capture();
  logger.clear().add(capture);
  return capture;
}

describe("logger", () => {
  it("lets one module log at its own level while the rest keep the process level", () => {
    const logger = createLogger("test", { level: "warn", modules: { scheduler: "debug" } });
    const capture = captured(logger);
    const scheduler = moduleLogger(logger, "scheduler");
    const tools = moduleLogger(logger, "tools");
    scheduler.debug("dispatch pass", { claimed: 3 });
    tools.info("tool catalog refreshed");
    tools.warn("tool source down");
    logger.info("process line");
    logger.error("process failure");
    expect(capture.lines.map((l) => [l.module ?? null, l.level, l.message])).to.deep.equal([
      ["scheduler", "debug", "dispatch pass"],
      ["tools", "warn", "tool source down"],
      [null, "error", "process failure"],
    ]);
  });

  it("can quiet one module below the process level", () => {
    const logger = createLogger("test", { level: "info", modules: { redis: "error" } });
    const capture = captured(logger);
    moduleLogger(logger, "redis").warn("redis connection error");
    moduleLogger(logger, "turn").info("turn started");
    expect(capture.lines.map((l) => l.message)).to.deep.equal(["turn started"]);
  });

  it("masks configured patterns and the configuration's own secrets (models, admin, MCP), anywhere in a line", () => {
    const config = loadConfig({
      LLM_BASE_URL: "https://llm.example/v1",
      LLM_MODEL: "m",
      LLM_API_KEY: "plainkey0123456789",
      ADMIN_TOKEN: "admin-token-0123456789",
      LOG_REDACT_PATTERNS: '["acct-[0-9]{6}"]',
      MCP_SERVERS: JSON.stringify({
        search: {
          transport: "http",
          url: "https://mcp.example/mcp",
          headers: { "X-Key": "mcpkey-0123456789" },
        },
        files: {
          transport: "stdio",
          command: "npx",
          env: { FILES_TOKEN: "filestoken-0123456789" },
        },
      }),
    });
    const logger = createLogger("test", logSettingsOf(config));
    const capture = captured(logger);
    logger.info("charging acct-123456 with plainkey0123456789", {
      detail: { url: "https://x/?t=admin-token-0123456789", note: "acct-12 stays" },
    });
    logger.warn("mcp server stderr: auth mcpkey-0123456789 / filestoken-0123456789 rejected");
    const line = capture.lines[0] as Record<string, unknown>;
    expect(line.message).to.equal("charging [redacted] with [redacted]");
    expect(capture.lines[1]?.message).to.equal(
      "mcp server stderr: auth [redacted] / [redacted] rejected",
    );
    expect(line.detail).to.deep.equal({ url: "https://x/?t=[redacted]", note: "acct-12 stays" });
  });

  it("does not mask short configured values that would hide ordinary words", () => {
    const logger = createLogger("test", { level: "info", secrets: ["", "abc"] });
    const capture = captured(logger);
    logger.info("abc is fine");
    expect(capture.lines[0]?.message).to.equal("abc is fine");
  });
});
