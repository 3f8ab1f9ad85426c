/**
 * Time buckets of the event log: which bucket an event belongs to, and what range a bucket covers.
 *
 * Invariants:
 * - bucket names are UTC-based and self-describing, so any reader can turn a name back into its
 *   range without knowing the granularity it was written with: `20261127` (day), `2026w48`
 *   (ISO week, Monday to Sunday), `202611` (month);
 * - names are valid SQL identifiers and MongoDB collection names once prefixed (`events_<name>`);
 * - within one granularity, names sort in time order.
 */
import { z } from "zod";

export const BUCKET_GRANULARITIES = ["day", "week", "month"] as const;
export type BucketGranularity = (typeof BUCKET_GRANULARITIES)[number];

export const EVENT_BUCKET_PREFIX = "events_";
const DAY_MS = 86_400_000;

const DAY_NAME = /^(\d{4})(\d{2})(\d{2})$/;
const WEEK_NAME = /^(\d{4})w(\d{2})$/;
const MONTH_NAME = /^(\d{4})(\d{2})$/;

export const BucketNameSchema = z.string().refine((name) => bucketRangeOrNull(name) !== null, {
  message: "a bucket name is YYYYMMDD (day), YYYYwWW (ISO week) or YYYYMM (month)",
});

/** The bucket holding an event stamped `tsMs`. */
export function bucketOf(tsMs: number, granularity: BucketGranularity): string {
  const date = new Date(tsMs);
  const year = date.getUTCFullYear();
  const month = pad2(date.getUTCMonth() + 1);
  if (granularity === "day") return `${year}${month}${pad2(date.getUTCDate())}`;
  if (granularity === "month") return `${year}${month}`;
  const { isoYear, week } = isoWeekOf(tsMs);
  return `${isoYear}w${pad2(week)}`;
}

/** The table or collection name of a bucket. */
export function bucketTable(name: string): string {
  return `${EVENT_BUCKET_PREFIX}${name}`;
}

/** [startMs, endMs) of a bucket; throws on a name that is not a bucket name. */
export function bucketRange(name: string): { startMs: number; endMs: number } {
  const range = bucketRangeOrNull(name);
  if (range === null) throw new Error(`"${name}" is not a bucket name`);
  return range;
}

function bucketRangeOrNull(name: string): { startMs: number; endMs: number } | null {
  let m = DAY_NAME.exec(name);
  if (m) {
    const startMs = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
    // Reject 20261131 and the like: the date must round-trip.
    if (bucketOf(startMs, "day") !== name) return null;
    return { startMs, endMs: startMs + DAY_MS };
  }
  m = WEEK_NAME.exec(name);
  if (m) {
    const startMs = isoWeekStart(Number(m[1]), Number(m[2]));
    if (bucketOf(startMs, "week") !== name) return null;
    return { startMs, endMs: startMs + 7 * DAY_MS };
  }
  m = MONTH_NAME.exec(name);
  if (m) {
    const month = Number(m[2]);
    if (month < 1 || month > 12) return null;
    const startMs = Date.UTC(Number(m[1]), month - 1, 1);
    return { startMs, endMs: Date.UTC(Number(m[1]), month, 1) };
  }
  return null;
}

/** ISO 8601 week: weeks start on Monday; week 1 holds the year's first Thursday. */
function isoWeekOf(tsMs: number): { isoYear: number; week: number } {
  const dayStart = Math.floor(tsMs / DAY_MS) * DAY_MS;
  const weekday = (new Date(dayStart).getUTCDay() + 6) % 7; // Monday = 0
  const thursday = dayStart + (3 - weekday) * DAY_MS;
  const isoYear = new Date(thursday).getUTCFullYear();
  const week = Math.floor((thursday - Date.UTC(isoYear, 0, 1)) / (7 * DAY_MS)) + 1;
  return { isoYear, week };
}

function isoWeekStart(isoYear: number, week: number): number {
  const jan4 = Date.UTC(isoYear, 0, 4);
  const jan4Weekday = (new Date(jan4).getUTCDay() + 6) % 7;
  return jan4 - jan4Weekday * DAY_MS + (week - 1) * 7 * DAY_MS;
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}
