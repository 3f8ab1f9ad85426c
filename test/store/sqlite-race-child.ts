/**
 * A child process for the multi-process SQLite test: opens the store file given on the command
 * line, says "ready", waits for a line on stdin, then races its peers round by round — creating a
 * turn under the round's shared idempotency key and appending the round's event batch — and
 * prints what it observed as one JSON line.
 *
 * Usage: node --import tsx sqlite-race-child.ts <file> <name> <eventsSession> <rounds> <batchSize>
 */
import { once } from "node:events";
import { createInterface } from "node:readline";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { claim, newTurn, seqRange, storedEvent } from "./fixtures.js";

const [file = "", name = "", eventsSession = "", roundsArg = "0", batchSizeArg = "0"] =
  process.argv.slice(2);
const rounds = Number(roundsArg);
const batchSize = Number(batchSizeArg);

const store = SqliteStore.open(file);
const lines = createInterface({ input: process.stdin });
process.stdout.write("ready\n");
await once(lines, "line");

const createdKeys: string[] = [];
let eventsInserted = 0;
for (let round = 0; round < rounds; round += 1) {
  const key = `race-key-${round}`;
  const turn = newTurn({ id: `${name}-turn-${round}`, sessionId: `race-session-${round}` });
  if ((await store.createTurn(turn, claim(key))).kind === "created") createdKeys.push(key);

  const seqs = seqRange(round * batchSize + 1, (round + 1) * batchSize);
  eventsInserted += await store.appendEvents(seqs.map((seq) => storedEvent(eventsSession, seq)));
}
await store.close();
lines.close();
process.stdout.write(`${JSON.stringify({ createdKeys, eventsInserted })}\n`);
