import { parseWith } from "../schemas/parse.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import {
  compareLinesSortKeys as compareKeys,
  decodeLinesCursor as decodeCursor,
  encodeLinesCursor as encodeCursor,
  type LinesSortKey,
} from "./lines-cursor.js";
import { type LinesPage, type LinesQuery, LinesQuerySchema } from "./query.js";
import { completedAtMs, currentVersions, matches, recordFilter } from "./summarize.js";

function sortKey(record: RatedUsageRecord): LinesSortKey {
  return [completedAtMs(record), record.observation.timing.completedAt, record.eventId];
}

/**
 * One page of the current rated records whose `completedAt` ∈ `[start, end)` and that match
 * every filter (the same selection as `summarize`). The reference implementation of
 * `RatedRecordStore.lines`.
 *
 * Pass only the **current** version of each event; as a defence, when two records share an
 * `eventId` the one with the highest `version` is kept.
 *
 * Items are ordered by (completedAt as epoch ms, then the completedAt string, then eventId):
 * a total order, so paging is stable. `next` is an opaque cursor (base64url of the last item's
 * sort key) present only when more items remain; passing it back returns the items strictly
 * after that key, so records stored between page fetches appear on a later page when they
 * sort after the cursor, and no record is ever returned twice.
 *
 * @throws LatchValidationError (`invalid_input`) naming the bad query field, e.g. `limit`, or
 * `cursor` for a cursor that this function did not produce.
 * @example
 * let page = selectLines(records, { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", limit: 100 });
 * while (page.next !== undefined) {
 *   page = selectLines(records, { start: "2026-03-01T00:00:00Z", end: "2026-04-01T00:00:00Z", limit: 100, cursor: page.next });
 * }
 */
export function selectLines(records: Iterable<RatedUsageRecord>, query: LinesQuery): LinesPage {
  const q = parseWith(LinesQuerySchema, query, "LinesQuery");
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const filter = recordFilter(q);

  const candidates: Array<{ key: LinesSortKey; record: RatedUsageRecord }> = [];
  for (const record of currentVersions(records)) {
    if (!matches(record, filter)) continue;
    const key = sortKey(record);
    if (after !== undefined && compareKeys(key, after) <= 0) continue;
    candidates.push({ key, record });
  }
  candidates.sort((a, b) => compareKeys(a.key, b.key));

  const page = candidates.slice(0, q.limit);
  const items = page.map((c) => c.record);
  const last = page[page.length - 1];
  if (candidates.length > q.limit && last !== undefined) return { items, next: encodeCursor(last.key) };
  return { items };
}
