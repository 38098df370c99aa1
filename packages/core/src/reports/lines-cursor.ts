import { Buffer } from "node:buffer";
import { LatchValidationError } from "../errors/index.js";

/**
 * The `lines` order and its page cursor, the same on every `RatedRecordStore`: a cursor one
 * backend hands out is the one every other backend would hand out for the same record, and
 * each accepts exactly what {@link encodeLinesCursor} produces.
 *
 * @packageDocumentation
 */

/**
 * A record's position in the lines order: (completedAt as epoch ms, the completedAt string,
 * eventId). A total order, so paging is stable.
 */
export type LinesSortKey = readonly [ms: number, completedAt: string, eventId: string];

/** Compares two sort keys in the lines order (strings by UTF-16 code units). */
export function compareLinesSortKeys(a: LinesSortKey, b: LinesSortKey): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  if (a[1] !== b[1]) return a[1] < b[1] ? -1 : 1;
  if (a[2] !== b[2]) return a[2] < b[2] ? -1 : 1;
  return 0;
}

/**
 * The cursor of the page after `key`: base64url (no padding) of the key as JSON.
 *
 * @example
 * encodeLinesCursor([Date.parse(at), at, "evt-1"]); // "WzE3…"
 */
export function encodeLinesCursor(key: LinesSortKey): string {
  return Buffer.from(JSON.stringify(key), "utf8").toString("base64url");
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function badCursor(): LatchValidationError {
  return LatchValidationError.at("LinesQuery", "cursor", "not a cursor returned by a previous page");
}

/**
 * Decodes a cursor strictly: only what {@link encodeLinesCursor} produces is accepted (the
 * canonical form, a timestamp that parses to its ms), anything else is `invalid_input` naming
 * `cursor`, the same on every backend.
 *
 * @example
 * const [ms, completedAt, eventId] = decodeLinesCursor(query.cursor);
 */
export function decodeLinesCursor(cursor: string): LinesSortKey {
  if (!BASE64URL.test(cursor)) throw badCursor();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw badCursor();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw badCursor();
  const [ms, completedAt, eventId]: unknown[] = parsed;
  if (
    typeof ms !== "number" ||
    typeof completedAt !== "string" ||
    typeof eventId !== "string" ||
    Date.parse(completedAt) !== ms
  ) {
    throw badCursor();
  }
  const key: LinesSortKey = [ms, completedAt, eventId];
  // Canonical form only: rejects lenient decodings (padding, stray bits, tampered text).
  if (encodeLinesCursor(key) !== cursor) throw badCursor();
  return key;
}
