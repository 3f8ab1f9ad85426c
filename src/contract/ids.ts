/**
 * Identifier formats. Server-made ids are a kind prefix plus a ULID-shaped value: 10 Crockford
 * base32 chars of millisecond time then 16 of randomness, so ids sort by creation time.
 * Client-chosen session and user ids must be safe as Redis key parts, folder names and BullMQ
 * job ids.
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CLIENT_ID_RULE =
  "1–128 chars of letters, digits, '.', '_' or '-', starting with a letter or digit";

export const SessionIdSchema = z.string().regex(CLIENT_ID, CLIENT_ID_RULE);
export const UserIdSchema = z.string().regex(CLIENT_ID, CLIENT_ID_RULE);

/** User of requests that name none, until authentication assigns one. */
export const ANONYMOUS_USER = "anonymous";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_CHARS = 16;
/** Random bytes are drawn in blocks: one crypto call per 256 ids instead of one per char. */
const POOL_BYTES = RANDOM_CHARS * 256;
let pool = randomBytes(POOL_BYTES);
let poolAt = 0;

export function sortableId(now = Date.now()): string {
  let time = "";
  for (let i = 0, t = now; i < TIME_CHARS; i++, t = Math.floor(t / 32))
    time = CROCKFORD[t % 32] + time;
  if (poolAt + RANDOM_CHARS > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolAt = 0;
  }
  let random = "";
  for (let i = 0; i < RANDOM_CHARS; i++) random += CROCKFORD[(pool[poolAt++] as number) & 31];
  return time + random;
}

export const newTurnId = () => `turn_${sortableId()}`;
export const newSessionId = () => `sess_${sortableId()}`;
