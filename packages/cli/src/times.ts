import { UsageError } from "./exit-codes.js";

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Parses a time flag: an ISO 8601 timestamp with a zone (`2026-03-01T12:00:00Z`,
 * `2026-03-01T13:00:00+01:00`) or a UTC day (`2026-03-01` = its midnight UTC). Returns the
 * instant as ISO 8601 UTC (`2026-03-01T12:00:00.000Z`).
 */
export function parseTime(value: string, flag: string): string {
  const text = value.trim();
  if (DATE_ONLY.test(text) || ISO_UTC.test(text)) {
    const ms = Date.parse(DATE_ONLY.test(text) ? `${text}T00:00:00Z` : text);
    if (Number.isFinite(ms)) return new Date(ms).toISOString();
  }
  throw new UsageError(
    `${flag}: expected an ISO 8601 time with a zone (2026-03-01T12:00:00Z) or a UTC day (2026-03-01), got "${value}"`,
  );
}

/** Whether a `--since` value looks like a time rather than a change-log position. */
export function looksLikeTime(value: string): boolean {
  return DATE_ONLY.test(value.trim()) || /^\d{4}-\d{2}-\d{2}T/.test(value.trim());
}
