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
