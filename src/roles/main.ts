/**
 * The common `main` of every farm process: read and validate the configuration (a bad value
 * stops the process with a message naming the key), start the role, stop it on SIGINT/SIGTERM.
 */
import { ConfigError, loadConfig } from "../config/load.js";
import type { FarmConfig } from "../config/schema.js";
import { createLogger, type Logger, logSettingsOf } from "../obs/logger.js";

export interface StoppableRole {
  stop(): Promise<void>;
}

export async function runRole(
  name: string,
  start: (config: FarmConfig, logger: Logger) => Promise<StoppableRole>,
): Promise<void> {
  let config: FarmConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${name}: ${err.message}\n`);
    process.exit(1);
  }
  const logger = createLogger(name, logSettingsOf(config));
  process.on("unhandledRejection", (reason) => {
    logger.error("unhandled promise rejection", {
      error: String((reason as Error)?.stack ?? reason),
    });
  });
  let role: StoppableRole;
  try {
    role = await start(config, logger);
  } catch (err) {
    logger.error(`${name} failed to start`, { error: (err as Error).message });
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("stopping", { signal });
    role
      .stop()
      .then(() => process.exit(0))
      .catch((err: Error) => {
        logger.error("stop failed", { error: err.message });
        process.exit(1);
      });
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}
