/**
 * Redis for tests, without loading the farm: the URL every test uses and key cleanup. Specs that
 * need Redis only import this rather than ./farm.js (which pulls in every farm role).
 */
import type { Redis } from "ioredis";

export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** Deletes every key matching `pattern` (SCAN + UNLINK, so a large test prefix never blocks). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}
