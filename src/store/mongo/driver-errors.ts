/**
 * How the MongoDB adapter reads driver errors: which mean "the store cannot be reached" (they
 * become StoreUnavailableError), and which are duplicate-key rejections (an idempotent write
 * that found its document already stored).
 *
 * Invariants:
 * - only errors about reaching the server (network, server selection, closed or cleared pools,
 *   timeouts, a primary stepping down or shutting down) are turned into StoreUnavailableError;
 *   every other error is rethrown unchanged, so bugs and refused writes are never disguised as
 *   an outage;
 * - a StoreUnavailableError message never carries credentials: the connection string's user
 *   info and password are cut out of the driver's message before it is quoted.
 */
import mongoose from "mongoose";
import { StoreUnavailableError } from "../errors.js";

const { mongo } = mongoose;

/** MongoDB's duplicate key error code (E11000). */
export const DUPLICATE_KEY_CODE = 11000;
/** "ns not found": dropping a collection that does not exist. */
export const NAMESPACE_NOT_FOUND_CODE = 26;

/** Server error codes that mean the deployment cannot take the operation right now. */
const UNAVAILABLE_SERVER_CODES = new Set([
  6, // HostUnreachable
  7, // HostNotFound
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/** Errors the driver (or mongoose) raises by name only: their classes are not all exported. */
const UNAVAILABLE_ERROR_NAMES = new Set([
  "MongoPoolClearedError",
  "PoolClearedOnNetworkError",
  "MongoPoolClosedError",
  "MongoWaitQueueTimeoutError",
  "MongooseServerSelectionError",
]);

/** How deep a `cause` chain is followed looking for a connectivity error. */
const MAX_CAUSE_DEPTH = 5;

/** Runs `operation`, turning connectivity failures into StoreUnavailableError. */
export async function guarded<T>(operation: () => Promise<T>, url: string): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw unavailableOr(err, url);
  }
}

/** StoreUnavailableError for a connectivity failure, else `err` itself. */
export function unavailableOr(err: unknown, url: string): unknown {
  if (err instanceof StoreUnavailableError || !isUnavailable(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new StoreUnavailableError(`MongoDB is unreachable: ${redactCredentials(reason, url)}`, {
    cause: err,
  });
}

export function isUnavailable(err: unknown): boolean {
  let current: unknown = err;
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth += 1) {
    if (isConnectivityError(current)) return true;
    current = current.cause;
  }
  return false;
}

function isConnectivityError(err: Error): boolean {
  if (
    err instanceof mongo.MongoNetworkError || // includes network timeouts and cleared pools
    err instanceof mongo.MongoServerSelectionError ||
    err instanceof mongo.MongoNotConnectedError ||
    err instanceof mongo.MongoTopologyClosedError ||
    err instanceof mongo.MongoClientClosedError ||
    err instanceof mongo.MongoServerClosedError ||
    err instanceof mongo.MongoOperationTimeoutError ||
    UNAVAILABLE_ERROR_NAMES.has(err.name)
  ) {
    return true;
  }
  if (err instanceof mongo.MongoServerError && typeof err.code === "number") {
    return UNAVAILABLE_SERVER_CODES.has(err.code);
  }
  // mongoose refuses operations on a connection that is not open when buffering is off.
  return err instanceof mongoose.Error && err.message.includes("before initial connection");
}

/** True when `err` is (or, for a bulk write, consists only of) duplicate key rejections. */
export function isDuplicateKeyError(err: unknown): boolean {
  if (!(err instanceof mongo.MongoServerError)) return false;
  if (err instanceof mongo.MongoBulkWriteError) {
    const errors = writeErrorsOf(err);
    if (errors.length > 0) return errors.every((e) => e.code === DUPLICATE_KEY_CODE);
  }
  return err.code === DUPLICATE_KEY_CODE;
}

/** The collection a duplicate key error names ("E11000 … collection: db.turns index: …"). */
export function duplicateKeyCollection(err: unknown): string | null {
  if (!isDuplicateKeyError(err)) return null;
  const message = (err as Error).message;
  return /collection: [^.\s]+\.(\S+) index/.exec(message)?.[1] ?? null;
}

/** The per-operation errors of a bulk write, always as an array. */
export function writeErrorsOf(
  err: InstanceType<typeof mongo.MongoBulkWriteError>,
): { code: unknown; index: number }[] {
  const errors: unknown = err.writeErrors;
  if (Array.isArray(errors)) return errors;
  return errors === undefined || errors === null
    ? []
    : [errors as { code: unknown; index: number }];
}

/** Removes a connection string's credentials from a message (in URL form and on their own). */
export function redactCredentials(message: string, url: string): string {
  let redacted = message.replace(/(mongodb(?:\+srv)?:\/\/)[^@/\s]*@/gi, "$1***@");
  const userInfo = /^mongodb(?:\+srv)?:\/\/([^@/]*)@/i.exec(url)?.[1];
  if (userInfo === undefined) return redacted;
  const password = userInfo.includes(":") ? userInfo.slice(userInfo.indexOf(":") + 1) : "";
  for (const secret of [userInfo, password, safeDecode(password)]) {
    // Very short secrets would blank out ordinary words; URL-form redaction above still applies.
    if (secret.length >= 4) redacted = redacted.split(secret).join("***");
  }
  return redacted;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
