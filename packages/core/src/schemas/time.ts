import { z } from "zod";

/** The first and last years a Latch timestamp may name (see {@link IsoTimestampSchema}). */
export const TIMESTAMP_YEARS = { min: 1970, max: 9999 } as const;

/**
 * An ISO 8601 UTC timestamp with `Z` (e.g. `2026-01-01T00:00:00Z`, optional fraction up to
 * nanoseconds), in the years 1970–9999. Offsets other than Z are rejected so that stored
 * timestamps compare the same everywhere. The years are bounded because the backends disagree
 * outside them: PostgreSQL has no year 0, JavaScript's `Date.UTC` reads years 0–99 as
 * 1900–1999, and five-digit years have no plain ISO 8601 form (`+010000-…`).
 */
export const IsoTimestampSchema = z.iso
  .datetime({
    offset: false,
    error: "expected an ISO 8601 UTC timestamp such as 2026-01-01T00:00:00Z",
  })
  .check(
    // Only the year of a well-formed timestamp: anything else has its one issue from the format.
    z.refine((value: string) => !/^\d{4}-/.test(value) || Number(value.slice(0, 4)) >= TIMESTAMP_YEARS.min, {
      error: `expected a year from ${TIMESTAMP_YEARS.min} to ${TIMESTAMP_YEARS.max}`,
    }),
  );

const DIGIT_0 = 48;

/** The digit at `at` of `text` (0–9), or -1 (another character, or none). */
function digitAt(text: string, at: number): number {
  const d = text.charCodeAt(at) - DIGIT_0; // NaN past the end: refused below
  return d >= 0 && d <= 9 ? d : -1;
}

/** The two-digit number at `at` of `text`, or -1. */
function twoDigits(text: string, at: number): number {
  const tens = digitAt(text, at);
  const units = digitAt(text, at + 1);
  return tens < 0 || units < 0 ? -1 : tens * 10 + units;
}

/** Days in a month of the Gregorian calendar (the pattern's, leap days included). */
function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * True for a timestamp in one of the two usual forms, `2026-03-01T12:00:00Z` and
 * `2026-03-01T12:00:00.000Z` (what `Date#toISOString` writes), that {@link IsoTimestampSchema}
 * accepts: read digit by digit, several times faster than the schema's pattern (hot paths check
 * timestamps on every call). False says nothing: the schema decides. So this may only accept
 * what the schema accepts (`test/observation/fast-parse.test.ts` compares them).
 */
export function usualTimestamp(value: string): boolean {
  const length = value.length;
  if (length !== 20 && (length !== 24 || value.charCodeAt(19) !== 46)) return false; // "."
  if (
    value.charCodeAt(4) !== 45 || // "-"
    value.charCodeAt(7) !== 45 ||
    value.charCodeAt(10) !== 84 || // "T"
    value.charCodeAt(13) !== 58 || // ":"
    value.charCodeAt(16) !== 58 ||
    value.charCodeAt(length - 1) !== 90 // "Z"
  ) {
    return false;
  }
  if (length === 24 && (digitAt(value, 20) < 0 || digitAt(value, 21) < 0 || digitAt(value, 22) < 0)) {
    return false;
  }
  const century = twoDigits(value, 0);
  const yearOf = twoDigits(value, 2);
  if (century < 0 || yearOf < 0) return false;
  const year = century * 100 + yearOf;
  const month = twoDigits(value, 5);
  const day = twoDigits(value, 8);
  const hour = twoDigits(value, 11);
  const minute = twoDigits(value, 14);
  const second = twoDigits(value, 17);
  return (
    year >= TIMESTAMP_YEARS.min &&
    month >= 1 &&
    month <= 12 &&
    day >= 1 &&
    day <= daysIn(year, month) &&
    hour >= 0 &&
    hour <= 23 &&
    minute >= 0 &&
    minute <= 59 &&
    second >= 0 &&
    second <= 59
  );
}

/** The number written by the `count` ASCII digits of `text` at `at`. */
function digits(text: string, at: number, count: number): number {
  let n = 0;
  for (let i = at; i < at + count; i++) n = n * 10 + (text.charCodeAt(i) - DIGIT_0);
  return n;
}

/**
 * `Date.parse(iso)` of a timestamp {@link IsoTimestampSchema} accepted, read from its digits
 * for the two common forms (`2026-01-01T00:00:00Z` and `…00.000Z`, milliseconds), where it
 * is several times faster than `Date.parse`; every other form (a longer fraction) goes to
 * `Date.parse`. The schema's pattern checks the calendar (months, leap days) and its years are
 * 1970–9999, so `Date.UTC` of the digits is the same instant.
 */
export function isoTimestampMs(iso: string): number {
  const withMs = iso.length === 24 && iso.charCodeAt(19) === 46; // "."
  if ((iso.length !== 20 && !withMs) || iso.charCodeAt(iso.length - 1) !== 90) return Date.parse(iso); // "Z"
  return Date.UTC(
    digits(iso, 0, 4),
    digits(iso, 5, 2) - 1,
    digits(iso, 8, 2),
    digits(iso, 11, 2),
    digits(iso, 14, 2),
    digits(iso, 17, 2),
    withMs ? digits(iso, 20, 3) : 0,
  );
}
