/**
 * Calendar arithmetic for grant expirations: `count × HOUR | DAY | WEEK | MONTH | YEAR` added
 * to an instant, in UTC or in an IANA time zone, with `Intl` as the only source of zone rules.
 *
 * - HOUR is elapsed time: `count × 3,600,000 ms`, whatever the zone.
 * - DAY, WEEK (7 days), MONTH and YEAR move the local wall-clock date in the zone and keep its
 *   time of day: 00:00 on 1 March plus 1 DAY is 00:00 on 2 March even across a DST change
 *   (a 23- or 25-hour day).
 * - MONTH and YEAR clamp the day to the end of a shorter month: 31 January + 1 MONTH is
 *   28 (or 29) February; 29 February 2028 + 1 YEAR is 28 February 2029.
 * - A local time that does not exist (skipped by a spring-forward change) moves forward by the
 *   gap (02:30 → 03:30); a local time that happens twice (fall-back) takes the earlier instant.
 *   This is what RFC 5545 and Temporal's `"compatible"` disambiguation do.
 */

/** The units a grant's expiration counts in. */
export const EXPIRATION_UNITS = ["HOUR", "DAY", "WEEK", "MONTH", "YEAR"] as const;
/** One of {@link EXPIRATION_UNITS}. */
export type ExpirationUnit = (typeof EXPIRATION_UNITS)[number];

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
      era: "short",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when `Intl` knows `timeZone` as an IANA zone name (e.g. `Europe/Paris`, `UTC`). */
export function isTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

interface WallClock {
  year: number;
  /** 1–12 */
  month: number;
  day: number;
  /** Milliseconds since local midnight. */
  timeOfDay: number;
}

/** The wall clock in `timeZone` at instant `ms`. */
function wallClock(ms: number, timeZone: string): WallClock {
  if (timeZone === "UTC") {
    const d = new Date(ms);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      // Not Date.UTC: it reads years 0–99 as 1900–1999.
      timeOfDay:
        ms -
        wallAsUtc({
          year: d.getUTCFullYear(),
          month: d.getUTCMonth() + 1,
          day: d.getUTCDate(),
          timeOfDay: 0,
        }),
    };
  }
  const parts: Record<string, string> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(ms))) parts[part.type] = part.value;
  let year = Number(parts.year);
  if (parts.era === "BC" || parts.era === "B") year = 1 - year;
  const subSecond = ((ms % 1000) + 1000) % 1000;
  return {
    year,
    month: Number(parts.month),
    day: Number(parts.day),
    timeOfDay:
      (Number(parts.hour) * 3600 + Number(parts.minute) * 60 + Number(parts.second)) * 1000 + subSecond,
  };
}

/** The wall clock as if it were UTC, in epoch milliseconds. */
function wallAsUtc(w: WallClock): number {
  const d = new Date(0);
  d.setUTCFullYear(w.year, w.month - 1, w.day);
  d.setUTCHours(0, 0, 0, 0);
  return d.getTime() + w.timeOfDay;
}

/** The zone's offset from UTC at instant `ms`, in milliseconds (local − UTC). */
function offsetAt(ms: number, timeZone: string): number {
  return wallAsUtc(wallClock(ms, timeZone)) - ms;
}

/** The instant at which the wall clock in `timeZone` shows `w` (gap: forward; overlap: earlier). */
function instantOf(w: WallClock, timeZone: string): number {
  const local = wallAsUtc(w);
  if (timeZone === "UTC") return local;
  // Zone offsets change at most once within a day on either side of any local time.
  const before = offsetAt(local - DAY_MS, timeZone);
  const after = offsetAt(local + DAY_MS, timeZone);
  const candidates = [local - before, local - after].filter((ms) => ms + offsetAt(ms, timeZone) === local);
  if (candidates.length > 0) return Math.min(...candidates);
  // The local time was skipped: read it with the offset in force before the change.
  return local - before;
}

function daysInMonth(year: number, month: number): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, 0); // day 0 of the next month
  return d.getUTCDate();
}

/**
 * `at` plus `count × unit`, calendar-correct in `timeZone` (default `UTC`), in epoch
 * milliseconds. See the module comment for the rules.
 *
 * @example
 * addCalendar(Date.parse("2026-01-31T00:00:00Z"), 1, "MONTH"); // 2026-02-28T00:00:00Z
 * addCalendar(Date.parse("2026-03-07T05:00:00Z"), 1, "DAY", "America/New_York");
 * // 2026-03-08T04:00:00Z: midnight to midnight, a 23-hour day
 */
export function addCalendar(at: number, count: number, unit: ExpirationUnit, timeZone = "UTC"): number {
  if (unit === "HOUR") return at + count * HOUR_MS;
  const w = wallClock(at, timeZone);
  let { year, month, day } = w;
  if (unit === "DAY" || unit === "WEEK") {
    const days = unit === "DAY" ? count : count * 7;
    const d = new Date(0);
    d.setUTCFullYear(year, month - 1, day + days);
    year = d.getUTCFullYear();
    month = d.getUTCMonth() + 1;
    day = d.getUTCDate();
  } else {
    const months = unit === "MONTH" ? count : count * 12;
    const index = year * 12 + (month - 1) + months;
    year = Math.floor(index / 12);
    month = (index % 12) + 1;
    day = Math.min(day, daysInMonth(year, month));
  }
  return instantOf({ year, month, day, timeOfDay: w.timeOfDay }, timeZone);
}
