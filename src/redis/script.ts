/**
 * Registers a Lua script on a connection (ioredis caches it and calls EVALSHA, falling back to
 * EVAL after a Redis restart) and returns it as a plain async function of keys then args.
 */
import type { Redis } from "ioredis";

export type RedisScript<Reply> = (...keysThenArgs: (string | number)[]) => Promise<Reply>;

export function defineScript<Reply>(
  redis: Redis,
  name: string,
  numberOfKeys: number,
  lua: string,
): RedisScript<Reply> {
  redis.defineCommand(name, { numberOfKeys, lua });
  const command = (redis as unknown as Record<string, RedisScript<Reply> | undefined>)[name];
  if (!command) throw new Error(`Redis script ${name} was not registered`);
  return command.bind(redis);
}
