/** Process entry of the LLM simulator (`npm run start:sim`). All behaviour lives in src/sim/. */
import { runRole } from "../src/roles/main.js";
import { startSimServer } from "../src/sim/server.js";

await runRole("llm-sim", async (config, logger) => {
  const sim = await startSimServer(config.sim, { logger });
  logger.info("llm simulator listening", { url: sim.url });
  return { stop: () => sim.close() };
});
