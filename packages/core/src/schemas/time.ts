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
