/** Process entry of the bucket archiver (`npm run start:archiver`). */

import { startArchiver } from "../src/roles/archiver-role.js";
import { runRole } from "../src/roles/main.js";

await runRole("archiver", startArchiver);
