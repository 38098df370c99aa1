import { z } from "zod";

/**
 * An ISO 8601 UTC timestamp with `Z` (e.g. `2026-01-01T00:00:00Z`, optional fraction up to
 * nanoseconds). Offsets other than Z are rejected so that stored timestamps compare the same
 * everywhere.
 */
export const IsoTimestampSchema = z.iso.datetime({
  offset: false,
  error: "expected an ISO 8601 UTC timestamp such as 2026-01-01T00:00:00Z",
});
