/**
 * Identifier formats. Server-made ids are a kind prefix plus a ULID (time-ordered, so logs and
 * listings sort by creation). Client-chosen session and user ids must be safe as Redis key parts,
 * folder names and BullMQ job ids.
 */
import { ulid } from "ulid";
import { z } from "zod";

const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const CLIENT_ID_RULE =
  "1–128 chars of letters, digits, '.', '_' or '-', starting with a letter or digit";

export const SessionIdSchema = z.string().regex(CLIENT_ID, CLIENT_ID_RULE);
export const UserIdSchema = z.string().regex(CLIENT_ID, CLIENT_ID_RULE);
export const TurnIdSchema = z.string().regex(/^turn_[0-9A-Z]{26}$/, "a turn id (turn_…)");

/** User of requests that name none, until authentication assigns one. */
export const ANONYMOUS_USER = "anonymous";

export const newTurnId = () => `turn_${ulid()}`;
export const newSessionId = () => `sess_${ulid()}`;
