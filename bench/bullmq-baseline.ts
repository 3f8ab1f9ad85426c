/**
 * The baseline every farm figure is compared with: plain BullMQ moving no-op jobs through one
 * queue on the same Redis, with the same worker concurrency. It bounds what any BullMQ-based
 * design can do per worker process on this machine.
 */
import { Queue, Worker } from "bullmq";
import { Redis } from "ioredis";
import { round } from "./stats.js";

export async function bullmqNoopThroughput(
  redisUrl: string,
  jobs: number,
  concurrency: number,
): Promise<{ jobs: number; jobs_per_s: number; concurrency: number }> {
  const prefix = `bench-bullmq-${process.pid}-${Date.now().toString(36)}`;
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue("noop", { connection, prefix });
  const batch = 1_000;
  for (let i = 0; i < jobs; i += batch) {
    const size = Math.min(batch, jobs - i);
    await queue.addBulk(
      Array.from({ length: size }, (_, k) => ({
        name: "noop",
        data: { n: i + k },
        opts: { removeOnComplete: true, removeOnFail: true },
      })),
    );
  }
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const started = performance.now();
  const worker = new Worker(
    "noop",
    async () => {
      if (++done === jobs) finish();
    },
    { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix, concurrency },
  );
  await finished;
  const seconds = (performance.now() - started) / 1000;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  await connection.quit();
  return { jobs, jobs_per_s: round(jobs / seconds), concurrency };
}
