/** Process entry of the event persister (`npm run start:persister`). */

import { runRole } from "../src/roles/main.js";
import { startPersister } from "../src/roles/persister-role.js";

await runRole("persister", startPersister);
