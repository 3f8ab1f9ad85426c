/** Process entry of the API role (`npm run start:api`). */
import { runRole } from "../src/roles/main.js";
import { startApi } from "./start.js";

await runRole("api", startApi);
