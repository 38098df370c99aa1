import { z } from "zod";
import { LatchValidationError } from "../errors/index.js";
import { parseWith } from "../schemas/parse.js";

/**
 * Budget periods of a quota account: when its `spent` starts again at 0. One home for the
 * rule every backend applies (memory and Redis call {@link quotaPeriodBounds}; Postgres runs
 * the same calendar arithmetic on its own time-zone database, migration 0015).
 *
 * - Calendar periods (`every: "day" | "week" | "month"`) start at local midnight in `timeZone`
 *   (an IANA name, default `UTC`): a day, a week from **Monday** (ISO 8601), a month from its
 *   1st. Boundaries follow the zone's offset changes, so a Europe/Berlin day is 23 hours on
 *   the last Sunday of March and 25 on the last Sunday of October. A local midnight that a
 *   zone skips (a few zones change offset at 00:00) starts the day at the first instant of it;
 *   one that a zone repeats (a fall-back at 00:00: America/Havana) at its first occurrence.
 * - Rolling windows (`rollingMs`) count the usage committed in the last `rollingMs`
 *   milliseconds **at bucket granularity**, so that storage stays bounded whatever the
 *   traffic: time is cut into buckets of {@link quotaRollingBucketMs}`(rollingMs)` =
 *   ⌈rollingMs / 100⌉ ms aligned on the epoch (`[k·w, (k+1)·w)`), every backend keeps one
 *   entry per bucket (the sum of its commits, recorded at the bucket's last millisecond), and
 *   a commit leaves the window when its **whole bucket** has: at the first `now` with
 *   `bucketEnd − 1 ≤ now − rollingMs`. So a commit counts at least `rollingMs` and less than
 *   `rollingMs + w` (never less than the window, at most 1 % longer), and an account keeps at
 *   most 101 entries however many commits it gets. `spent` is exactly the sum of the commits
 *   made at or after the window's `periodStart` (see {@link quotaPeriodBounds}).
 *
 * @packageDocumentation
 */

/** The longest rolling window: 366 days, in milliseconds. */
export const QUOTA_ROLLING_MAX_MS = 366 * 24 * 3_600_000;

/** Buckets per rolling window: its commits are kept per bucket of ⌈rollingMs / 100⌉ ms. */
export const QUOTA_ROLLING_BUCKETS = 100;

/**
 * The bucket width of a rolling window: ⌈rollingMs / {@link QUOTA_ROLLING_BUCKETS}⌉ ms (10 ms
 * for a 1 s window, 36 s for an hour, 6 h for 25 days, 87.84 h for 366 days). Buckets are aligned on the epoch.
 *
 * @example
 * quotaRollingBucketMs(3_600_000); // 36000
 */
export function quotaRollingBucketMs(rollingMs: number): number {
  return Math.ceil(rollingMs / QUOTA_ROLLING_BUCKETS);
}

/**
 * The instant a commit at `atMs` is recorded at in a rolling window of `rollingMs`: the last
 * millisecond of its bucket. It stops counting at the first `now` with `entry ≤ now − rollingMs`
 * (its whole bucket has left the window); commits with the same entry are summed in one.
 *
 * @example
 * quotaRollingEntryAt(10_000, 1_050); // 1099: bucket [1000, 1100), counted until now = 11098
 */
export function quotaRollingEntryAt(rollingMs: number, atMs: number): number {
  const width = quotaRollingBucketMs(rollingMs);
  return Math.floor(atMs / width) * width + width - 1;
}

const EVERY_MESSAGE = 'expected "day", "week" or "month"';
const ROLLING_MESSAGE = `expected an integer number of milliseconds from 1000 to ${QUOTA_ROLLING_MAX_MS}`;
const PERIOD_MESSAGE = 'expected { every: "day" | "week" | "month", timeZone? } or { rollingMs }';
const ZONE_MESSAGE = "expected an IANA time zone name, e.g. Europe/Berlin";

/** A calendar period: `spent` restarts at each local midnight, Monday or 1st of `timeZone`. */
export interface QuotaCalendarPeriod {
  every: "day" | "week" | "month";
  /** IANA time zone name (e.g. `Europe/Berlin`). Default `UTC`. */
  timeZone?: string;
}

/** A rolling window: `spent` is the usage committed in the last `rollingMs` milliseconds. */
export interface QuotaRollingPeriod {
  /** Window length in ms, an integer from 1,000 to {@link QUOTA_ROLLING_MAX_MS} (366 days). */
  rollingMs: number;
}

/** The period of a quota account's limit (see `QuotaReservator.setLimit`). */
export type QuotaPeriod = QuotaCalendarPeriod | QuotaRollingPeriod;

/** A period as stored: the time zone resolved to its canonical name. */
export type StoredQuotaPeriod = { every: "day" | "week" | "month"; timeZone: string } | { rollingMs: number };

const formats = new Map<string, Intl.DateTimeFormat>();

/**
 * The formatter of `timeZone` (cached: building one costs far more than using it), or undefined.
 * The cache keeps the 1,000 names used last: names come from clients in any letter case, so a
 * full cache must not shut out the zones in use (they would build a formatter on every call).
 */
function formatOf(timeZone: string): Intl.DateTimeFormat | undefined {
  let format = formats.get(timeZone);
  if (format !== undefined) {
    formats.delete(timeZone);
    formats.set(timeZone, format);
  } else {
    try {
      format = new Intl.DateTimeFormat("en-US", {
        timeZone,
        hourCycle: "h23",
        year: "numeric",
        month: "numeric",
        day: "numeric",
        hour: "numeric",
        minute: "numeric",
        second: "numeric",
      });
    } catch {
      return undefined;
    }
    if (formats.size >= 1_000) formats.delete(formats.keys().next().value as string);
    formats.set(timeZone, format);
  }
  return format;
}

const ZoneSchema = z
  .string({ error: ZONE_MESSAGE })
  .min(1, { error: ZONE_MESSAGE })
  .max(64, { error: ZONE_MESSAGE })
  .regex(/^[A-Za-z][A-Za-z0-9_+\-/]*$/, { error: ZONE_MESSAGE })
  .refine((zone) => formatOf(zone) !== undefined, { error: ZONE_MESSAGE });

/** The input schema of a {@link QuotaPeriod}. */
export const QuotaPeriodSchema = z.union(
  [
    z.strictObject({
      every: z.enum(["day", "week", "month"], { error: EVERY_MESSAGE }),
      timeZone: ZoneSchema.optional(),
    }),
    z.strictObject({
      rollingMs: z
        .number({ error: ROLLING_MESSAGE })
        .int({ error: ROLLING_MESSAGE })
        .min(1_000, { error: ROLLING_MESSAGE })
        .max(QUOTA_ROLLING_MAX_MS, { error: ROLLING_MESSAGE }),
    }),
  ],
  { error: PERIOD_MESSAGE },
);

/**
 * Checks a period (`invalid_input` naming `period…` otherwise) and resolves its time zone to
 * the canonical IANA name (`utc` → `UTC`, default `UTC`), so equal periods compare equal.
 */
export function parseQuotaPeriod(value: unknown, subject: string): StoredQuotaPeriod {
  const period = parseWith(QuotaPeriodSchema, value, subject, "period");
  if ("rollingMs" in period) return { rollingMs: period.rollingMs };
  const zone = period.timeZone ?? "UTC";
  const resolved = (formatOf(zone) as Intl.DateTimeFormat).resolvedOptions().timeZone;
  return { every: period.every, timeZone: resolved === "Etc/UTC" ? "UTC" : resolved };
}

/**
 * `QuotaReservator.setLimit`'s options, checked the same way on every backend: an AbortSignal
 * alone (the older signature) or `{ period?, signal? }`. `period` is the stored period, `null`
 * to remove it, or `undefined` to keep the account's.
 */
export function parseSetLimitOptions(
  options: unknown,
  subject: string,
): { period?: StoredQuotaPeriod | null; signal?: AbortSignal } {
  if (options === undefined) return {};
  if (options instanceof AbortSignal) return { signal: options };
  if (typeof options !== "object" || options === null) {
    throw LatchValidationError.at(subject, "options", "expected { period?, signal? } or an AbortSignal");
  }
  const out: { period?: StoredQuotaPeriod | null; signal?: AbortSignal } = {};
  for (const key of Object.keys(options)) {
    if (key !== "period" && key !== "signal")
      throw LatchValidationError.at(subject, "options", "expected { period?, signal? } or an AbortSignal");
  }
  const { period, signal } = options as { period?: unknown; signal?: unknown };
  if (period === null) out.period = null;
  else if (period !== undefined) out.period = parseQuotaPeriod(period, subject);
  if (signal !== undefined) {
    if (!(signal instanceof AbortSignal))
      throw LatchValidationError.at(subject, "signal", "expected an AbortSignal");
    out.signal = signal;
  }
  return out;
}

/** Whether two stored periods are the same. */
export function samePeriod(a: StoredQuotaPeriod | undefined, b: StoredQuotaPeriod | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if ("rollingMs" in a) return "rollingMs" in b && a.rollingMs === b.rollingMs;
  return "every" in b && a.every === b.every && a.timeZone === b.timeZone;
}

const DAY_MS = 86_400_000;

/** The local calendar date and time of `atMs` in the formatter's zone. */
function localParts(format: Intl.DateTimeFormat, atMs: number): number[] {
  const parts: Record<string, number> = {};
  for (const p of format.formatToParts(atMs)) {
    if (p.type !== "literal") parts[p.type] = Number(p.value);
  }
  return [
    parts.year ?? 0,
    parts.month ?? 0,
    parts.day ?? 0,
    parts.hour ?? 0,
    parts.minute ?? 0,
    parts.second ?? 0,
  ];
}

/** The zone's offset from UTC at `atMs`, in ms (whole seconds; sub-second instants floored). */
function offsetAt(format: Intl.DateTimeFormat, atMs: number): number {
  const second = Math.floor(atMs / 1_000) * 1_000;
  const [y, mo, d, h, mi, s] = localParts(format, second) as [number, number, number, number, number, number];
  return Date.UTC(y, mo - 1, d, h, mi, s) - second;
}

/**
 * The first instant of the local date (y, m, d) in the formatter's zone: local midnight, or,
 * where the zone skips midnight, the end of that gap.
 */
function startOfLocalDate(format: Intl.DateTimeFormat, y: number, m: number, d: number): number {
  const wall = Date.UTC(y, m - 1, d);
  const key = (at: number) => {
    const [ly, lm, ld] = localParts(format, at) as [number, number, number];
    return Date.UTC(ly, lm - 1, ld);
  };
  // Midnight exists under one of the offsets in force a day either side: take the earliest.
  let best = Number.POSITIVE_INFINITY;
  for (const offset of [offsetAt(format, wall - DAY_MS), offsetAt(format, wall + DAY_MS)]) {
    const candidate = wall - offset;
    if (candidate < best && offsetAt(format, candidate) === offset) best = candidate;
  }
  if (best !== Number.POSITIVE_INFINITY) return best;
  // Skipped midnight: the first instant (to the second) whose local date is this one.
  let lo = wall - 2 * DAY_MS;
  let hi = wall + 2 * DAY_MS;
  while (hi - lo > 1_000) {
    const mid = Math.floor((lo + hi) / 2_000) * 1_000;
    if (key(mid) >= wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * The period containing `atMs` (epoch ms, the store's clock): `[start, end)` in epoch ms.
 * For a rolling window it is `[start, atMs]`, the usage it counts: `start` is the first
 * instant of the oldest bucket still counted (the bucket of `atMs − rollingMs + 1`), so
 * `atMs − start` is from `rollingMs − 1` to `rollingMs + w − 2` (see
 * {@link quotaRollingBucketMs}).
 *
 * A time zone this process's `Intl` does not know (a period stored by another process, or
 * never checked by `parseQuotaPeriod`) is `invalid_input` naming `period.timeZone`.
 *
 * @example
 * quotaPeriodBounds({ every: "day", timeZone: "Europe/Berlin" }, Date.UTC(2026, 2, 29, 12));
 * // { start: Date.UTC(2026, 2, 28, 23), end: Date.UTC(2026, 2, 29, 22) } — a 23-hour day
 */
export function quotaPeriodBounds(period: StoredQuotaPeriod, atMs: number): { start: number; end: number } {
  if ("rollingMs" in period) {
    const width = quotaRollingBucketMs(period.rollingMs);
    return { start: Math.floor((atMs - period.rollingMs + 1) / width) * width, end: atMs };
  }
  const format = formatOf(period.timeZone);
  if (format === undefined)
    throw LatchValidationError.at("quotaPeriodBounds", "period.timeZone", ZONE_MESSAGE);
  const [y, m, d] = localParts(format, atMs) as [number, number, number];
  let from: [number, number, number];
  let to: [number, number, number];
  switch (period.every) {
    case "day":
      from = [y, m, d];
      to = civil(Date.UTC(y, m - 1, d) + DAY_MS);
      break;
    case "week": {
      const daysSinceMonday = (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
      const monday = Date.UTC(y, m - 1, d) - daysSinceMonday * DAY_MS;
      from = civil(monday);
      to = civil(monday + 7 * DAY_MS);
      break;
    }
    case "month":
      from = [y, m, 1];
      to = m === 12 ? [y + 1, 1, 1] : [y, m + 1, 1];
      break;
  }
  return { start: startOfLocalDate(format, ...from), end: startOfLocalDate(format, ...to) };
}

/** The (year, month, day) of a UTC-midnight epoch ms. */
function civil(utcMidnight: number): [number, number, number] {
  const date = new Date(utcMidnight);
  return [date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate()];
}
