/** Process entry of a turn worker (`npm run start:worker`); run as many as the load needs. */
import { runRole } from "../src/roles/main.js";
import { startTurnWorker } from "../src/roles/worker-role.js";

await runRole("worker", startTurnWorker);
