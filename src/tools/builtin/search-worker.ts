/**
 * Entry point of the `search_content` worker thread: runs the one `SearchJob` it is given as
 * `workerData` and posts one `SearchReply`, then ends. The parent terminates it when the call is
 * aborted or the search deadline passes, which also stops a regex stuck backtracking.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runSearch, type SearchJob, type SearchReply } from "./search-walk.js";

async function main(port: NonNullable<typeof parentPort>): Promise<void> {
  let reply: SearchReply;
  try {
    reply = { type: "done", result: await runSearch(workerData as SearchJob) };
  } catch (err) {
    // An Error's own properties (code, syscall) do not survive postMessage: copy them.
    const e = err as NodeJS.ErrnoException;
    reply = {
      type: "failed",
      error: {
        name: String(e?.name ?? "Error"),
        message: String(e?.message ?? err),
        ...(typeof e?.code === "string" ? { code: e.code } : {}),
        ...(typeof e?.syscall === "string" ? { syscall: e.syscall } : {}),
      },
    };
  }
  port.postMessage(reply);
}

if (parentPort) void main(parentPort);
