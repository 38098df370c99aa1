import { CorruptRecordError, OverflowError } from "../errors/index.js";
import { addFixed, type Fixed, formatFixed, parseFixed, SIGNED_DECIMAL } from "../money/decimal.js";
import type { MeterKind } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import {
  type FilterKey,
  type SummaryGroupKey,
  type SummaryQuery,
  SummaryQuerySchema,
  type SummaryRow,
} from "./query.js";
import { TOKEN_GROUP_NAMES, TOKEN_GROUPS } from "./token-groups.js";

// ── shared by summarize() and selectLines() ────────────────────────────────────

/**
 * Keeps one record per `eventId`: the highest `version` (the first one seen on a tie).
 * Callers of the report functions already pass current versions only; this is a defence.
 * @internal
 */
export function currentVersions(records: Iterable<RatedUsageRecord>): RatedUsageRecord[] {
  const byEvent = new Map<string, RatedUsageRecord>();
  for (const record of records) {
    const seen = byEvent.get(record.eventId);
    if (seen === undefined || record.version > seen.version) byEvent.set(record.eventId, record);
  }
  return [...byEvent.values()];
}

/** `observation.timing.completedAt` as epoch milliseconds; a record without one is corrupt. @internal */
export function completedAtMs(record: RatedUsageRecord): number {
  const ms = Date.parse(record.observation.timing.completedAt);
  if (Number.isNaN(ms)) {
    throw new CorruptRecordError({
      id: record.ratedRecordId,
      reason: "observation.timing.completedAt is not a timestamp",
    });
  }
  return ms;
}

/** The value of one report dimension for a record; `undefined` when the record has none. @internal */
export function dimension(record: RatedUsageRecord, key: SummaryGroupKey): string | undefined {
  const obs = record.observation;
  switch (key) {
    case "provider":
      return obs.provider?.providerId;
    case "model":
      return obs.model.billableModel;
    case "day":
      return new Date(completedAtMs(record)).toISOString().slice(0, 10);
    default:
      return obs.subject[key];
  }
}

/** A validated report window and filters, ready to test records against. @internal */
export interface RecordFilter {
  startMs: number;
  endMs: number;
  filters: ReadonlyArray<readonly [FilterKey, string]>;
}

/** Builds a {@link RecordFilter} from a parsed query. @internal */
export function recordFilter(query: {
  start: string;
  end: string;
  filters?: Partial<Record<FilterKey, string>> | undefined;
}): RecordFilter {
  const filters: Array<readonly [FilterKey, string]> = [];
  for (const [key, value] of Object.entries(query.filters ?? {}) as Array<[FilterKey, string | undefined]>) {
    if (value !== undefined) filters.push([key, value]);
  }
  return { startMs: Date.parse(query.start), endMs: Date.parse(query.end), filters };
}

/** True when completedAt ∈ [start, end) (epoch ms) and every filter matches exactly. @internal */
export function matches(record: RatedUsageRecord, filter: RecordFilter): boolean {
  const ms = completedAtMs(record);
  if (ms < filter.startMs || ms >= filter.endMs) return false;
  for (const [key, value] of filter.filters) {
    if (dimension(record, key) !== value) return false;
  }
  return true;
}

// ── summarize ─────────────────────────────────────────────────────────────────

function meter(record: RatedUsageRecord, kind: MeterKind): number {
  const value = record.observation.meters[kind];
  if (value === undefined) return 0;
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CorruptRecordError({
      id: record.ratedRecordId,
      reason: `observation.meters.${kind} is not a non-negative safe integer`,
    });
  }
  return value;
}

/** Adds two safe integers exactly, or throws `OverflowError` naming the field. */
function add(a: number, b: number, field: string): number {
  const sum = a + b;
  // Both operands are safe integers, so a true sum ≤ 2^53-1 is exact and a larger one rounds to ≥ 2^53.
  if (sum > Number.MAX_SAFE_INTEGER) throw new OverflowError({ path: field, reason: "sum exceeds 2^53-1" });
  return sum;
}

/** Exact fixed-point sum (no precision limit, unlike a 40-digit decimal context). */
interface Bucket {
  values: string[];
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  totalTokens: number;
  requests: number;
  successes: number;
  failures: number;
  cost: Map<string, Fixed>;
}

function newBucket(values: string[]): Bucket {
  return {
    values,
    inputTokens: 0,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    totalTokens: 0,
    requests: 0,
    successes: 0,
    failures: 0,
    cost: new Map(),
  };
}

function addRecord(bucket: Bucket, record: RatedUsageRecord): void {
  for (const group of TOKEN_GROUP_NAMES) {
    let sum = 0;
    for (const kind of TOKEN_GROUPS[group]) sum = add(sum, meter(record, kind), group);
    bucket[group] = add(bucket[group], sum, group);
  }

  bucket.requests += 1;
  if (record.observation.outcome.kind === "success") bucket.successes += 1;
  else bucket.failures += 1;

  if (!SIGNED_DECIMAL.test(record.total)) {
    throw new CorruptRecordError({ id: record.ratedRecordId, reason: "total is not a plain decimal string" });
  }
  const amount = parseFixed(record.total);
  const seen = bucket.cost.get(record.currency);
  bucket.cost.set(record.currency, seen === undefined ? amount : addFixed(seen, amount));
}

function compareValues(a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? "";
    const y = b[i] ?? "";
    if (x < y) return -1;
    if (x > y) return 1;
  }
  return 0;
}

/**
 * Summarises rated usage: token totals, request/success/failure counts and exact cost per
 * currency, grouped by `query.groupBy`. The reference implementation of
 * `RatedRecordStore.summary`: the in-memory store calls it and SQL adapters are tested
 * against it.
 *
 * - Pass only the **current** version of each event (the latest per `eventId`). As a defence,
 *   when two records share an `eventId` the one with the highest `version` is kept.
 * - A record counts when `observation.timing.completedAt` ∈ `[start, end)` (compared as epoch
 *   milliseconds) and every filter matches (`provider` = `provider.providerId`, `model` =
 *   `model.billableModel`, the rest from `subject`).
 * - Group values: `day` is the UTC `YYYY-MM-DD` of completedAt; a missing provider or subject
 *   field groups under `""`. Each row's `group` holds exactly the `groupBy` keys; with
 *   `groupBy: []` there is one row for everything, or none when nothing matched.
 * - Tokens: `inputTokens` = input + audio input, `cacheReadTokens` = cached input,
 *   `cacheWriteTokens` = 5-minute + 1-hour writes, `outputTokens` = output + reasoning + audio
 *   output, `totalTokens` = every token meter (not images, not custom meters). Integer sums
 *   are exact; a sum past 2^53-1 throws `OverflowError`.
 * - `costByCurrency`: the exact sum of `total` per currency, canonical decimal strings, never
 *   added across currencies.
 * - Rows are sorted by their group values in `groupBy` order (plain string comparison).
 *
 * @throws LatchValidationError (`invalid_input`) naming the bad query field, e.g. `end`.
 * @example
 * const rows = summarize(records, {
 *   start: "2026-03-01T00:00:00Z",
 *   end: "2026-04-01T00:00:00Z",
 *   groupBy: ["model", "day"],
 *   filters: { tenantId: "acme" },
 * });
 * // [{ group: { model: "gpt-4o", day: "2026-03-01" }, inputTokens: 1200, …, costByCurrency: { USD: "0.0042" } }, …]
 */
export function summarize(records: Iterable<RatedUsageRecord>, query: SummaryQuery): SummaryRow[] {
  const q = parseWith(SummaryQuerySchema, query, "SummaryQuery");
  const filter = recordFilter(q);
  const buckets = new Map<string, Bucket>();
  for (const record of currentVersions(records)) {
    if (!matches(record, filter)) continue;
    const values = q.groupBy.map((key) => dimension(record, key) ?? "");
    const id = JSON.stringify(values);
    let bucket = buckets.get(id);
    if (bucket === undefined) {
      bucket = newBucket(values);
      buckets.set(id, bucket);
    }
    addRecord(bucket, record);
  }

  const sorted = [...buckets.values()].sort((a, b) => compareValues(a.values, b.values));
  return sorted.map((bucket) => {
    const group: Partial<Record<SummaryGroupKey, string>> = {};
    q.groupBy.forEach((key, i) => {
      group[key] = bucket.values[i] ?? "";
    });
    const costByCurrency: Record<string, string> = {};
    for (const currency of [...bucket.cost.keys()].sort()) {
      const sum = bucket.cost.get(currency);
      if (sum !== undefined) costByCurrency[currency] = formatFixed(sum.units, sum.scale);
    }
    return {
      group,
      inputTokens: bucket.inputTokens,
      outputTokens: bucket.outputTokens,
      cacheReadTokens: bucket.cacheReadTokens,
      cacheWriteTokens: bucket.cacheWriteTokens,
      totalTokens: bucket.totalTokens,
      requests: bucket.requests,
      successes: bucket.successes,
      failures: bucket.failures,
      costByCurrency,
    };
  });
}
