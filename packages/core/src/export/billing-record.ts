import type { PreviousVersionLookup } from "../contracts/exporter.js";
import type { ChangeLogEntry } from "../contracts/rated-record-store.js";
import { ExportError, LatchError } from "../errors/index.js";
import { canonicalDecimal, SIGNED_DECIMAL, subtractDecimals, sumDecimals } from "../money/decimal.js";
import { toMinorUnits } from "../money/minor-units.js";
import { BUILTIN_METERS } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { IsoTimestampSchema } from "../schemas/time.js";

/** The schema id of every billing-export object (rows, manifests and object keys carry it). */
export const BILLING_EXPORT_SCHEMA = "latch.billing-export.v1";

/**
 * Every column of a {@link BillingRecord}, in THE order: JSONL writes object keys in this order,
 * CSV writes its header in this order, Parquet writes its schema in this order. Removing,
 * renaming, retyping or reordering a column is a new schema version, never an edit of this one.
 * The additive changes v1 has had (2026-12): the meter columns `image_input_tokens`,
 * `image_output_tokens`, `web_search_requests` and `web_fetch_requests`, inserted right after
 * `image_count`, then `cached_audio_input_tokens` right after `web_fetch_requests` (readers
 * that select columns by name are unaffected; positional readers of older files see fewer
 * columns), then `attributes` appended last, after `seq` (2026-12): every earlier column keeps
 * its position, so a reader that maps columns by position (a Hive/Athena CSV table, a `COPY`
 * with a fixed column list) still reads every old column right from new files and finds the
 * last column missing in older ones; inserted next to `custom_meters` it would have shifted
 * the money columns (`cost`, `cost_delta`, …) under such a reader.
 */
export const BILLING_COLUMNS = [
  "schema",
  "rated_record_id",
  "event_id",
  "version",
  "supersedes",
  "tenant_id",
  "org_id",
  "project_id",
  "api_key_id",
  "end_user_id",
  "feature",
  "provider",
  "model",
  "model_tier",
  "vendor",
  "region",
  "input_tokens",
  "cached_input_tokens",
  "cache_write_tokens",
  "cache_write_1h_tokens",
  "output_tokens",
  "reasoning_tokens",
  "audio_input_tokens",
  "audio_output_tokens",
  "image_count",
  "image_input_tokens",
  "image_output_tokens",
  "web_search_requests",
  "web_fetch_requests",
  "cached_audio_input_tokens",
  "custom_meters",
  "cost",
  "cost_delta",
  "cost_minor_units",
  "currency",
  "snapshot_id",
  "source",
  "outcome",
  "started_at",
  "completed_at",
  "rated_at",
  "seq",
  "attributes",
] as const;

export type BillingColumn = (typeof BILLING_COLUMNS)[number];

/** The built-in meter columns, each an integer (0 when the meter is absent). */
const METER_COLUMNS = BUILTIN_METERS;

/**
 * One rated-record version, flat and denormalised (`latch.billing-export.v1`).
 *
 * Every field is a string except `version` and the built-in meter columns (safe integers).
 * Absent optional values are empty strings, never null. Amounts are exact, canonical decimal
 * strings (`"0.0105"`, `"-0.001"`, `"0"`).
 */
export interface BillingRecord {
  schema: typeof BILLING_EXPORT_SCHEMA;
  rated_record_id: string;
  event_id: string;
  version: number;
  /** The ratedRecordId this version replaces, or `""` for a first version. */
  supersedes: string;
  tenant_id: string;
  org_id: string;
  project_id: string;
  api_key_id: string;
  end_user_id: string;
  feature: string;
  /** `observation.provider.providerId`, or `""`. */
  provider: string;
  /** `observation.model.billableModel`. */
  model: string;
  /** `observation.model.tier` (a provider service tier such as `flex`), or `""`. */
  model_tier: string;
  vendor: string;
  region: string;
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_tokens: number;
  cache_write_1h_tokens: number;
  output_tokens: number;
  reasoning_tokens: number;
  audio_input_tokens: number;
  audio_output_tokens: number;
  image_count: number;
  image_input_tokens: number;
  image_output_tokens: number;
  web_search_requests: number;
  web_fetch_requests: number;
  cached_audio_input_tokens: number;
  /** Custom meters as a JSON object string, names without `custom:`, keys sorted: `{"web_search":3}`; `{}` when none. */
  custom_meters: string;
  /** This version's exact total. */
  cost: string;
  /** `cost` minus the superseded version's cost (may be negative); equal to `cost` for version 1. */
  cost_delta: string;
  /** `cost` rounded half-even to the currency's ISO 4217 minor units, as a decimal integer string. */
  cost_minor_units: string;
  currency: string;
  snapshot_id: string;
  /** `provider_reported`, `stream_accumulated`, `estimated` or `corrected:<eventId>`. */
  source: string;
  /** `success`, `timeout`, `unknown` or `error:<code>`. */
  outcome: string;
  started_at: string;
  completed_at: string;
  rated_at: string;
  /** The change-log position (`ChangeLogEntry.seq`); `""` outside a change-log export. */
  seq: string;
  /**
   * `observation.attributes` as a JSON object string, keys sorted (written like
   * `custom_meters`): `{"provider_response_id":"chatcmpl-1","team":"a"}`; `{}` when none.
   */
  attributes: string;
}

// Compile-time check: BILLING_COLUMNS and BillingRecord name exactly the same fields.
type Missing = Exclude<BillingColumn, keyof BillingRecord> | Exclude<keyof BillingRecord, BillingColumn>;
const columnsMatchRecord: [Missing] extends [never] ? true : Missing = true;
void columnsMatchRecord;

/** How each column is typed in typed formats (Parquet): integer columns are the meters and `version`. */
export const BILLING_COLUMN_TYPES: Readonly<Record<BillingColumn, "string" | "integer">> = Object.fromEntries(
  BILLING_COLUMNS.map((c) => [
    c,
    c === "version" || (METER_COLUMNS as readonly string[]).includes(c) ? "integer" : "string",
  ]),
) as Record<BillingColumn, "string" | "integer">;

/**
 * What a superseded version contributes to the next version's `cost_delta`. A
 * {@link RatedUsageRecord} fits, so a store's record can be handed over as is.
 */
export interface PreviousVersion {
  total: string;
  currency: string;
}

function invalid(reason: string, cause?: unknown): ExportError {
  return new ExportError({ kind: "invalid_data", reason, cause });
}

const SEQ = /^[0-9]{1,40}$/;
const UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** A canonical decimal string: no leading zeros, no trailing fractional zeros, no `-0`. */
const CANONICAL_DECIMAL = /^(?:0|-?(?:0\.[0-9]*[1-9]|[1-9][0-9]*(?:\.[0-9]*[1-9])?))$/;

function amount(text: string, what: string, id: string): string {
  if (typeof text !== "string") throw invalid(`${id}: ${what} is not a plain decimal string`);
  // Stored totals are canonical already (the engine writes them so): return them as they are.
  if (CANONICAL_DECIMAL.test(text)) return text;
  if (!SIGNED_DECIMAL.test(text)) throw invalid(`${id}: ${what} is not a plain decimal string`);
  return canonicalDecimal(text);
}

function minorUnits(cost: string, currency: string, id: string): bigint {
  try {
    return toMinorUnits(cost, currency);
  } catch (e) {
    if (LatchError.isInstance(e) && e.code === "invalid_input") {
      throw invalid(`${id}: currency is not an ISO 4217 code with minor units`, e);
    }
    throw e;
  }
}

/**
 * `{"a":1,"b":"x"}` with keys in code-unit order (object key order would put integer-like names
 * first): the one serialiser of the JSON columns (`custom_meters`, `attributes`), so the same
 * map is always the same text. Strings are written by `JSON.stringify` (quotes, backslashes and
 * control characters escaped; other text, non-ASCII and emoji included, as it is).
 */
function sortedJson(values: Readonly<Record<string, number | string>>): string {
  const names = Object.keys(values).sort();
  return `{${names
    .map((n) => {
      const v = values[n];
      return `${JSON.stringify(n)}:${typeof v === "number" ? v : JSON.stringify(v)}`;
    })
    .join(",")}}`;
}

/**
 * The `attributes` column: a JSON object whose every own value is a string (the observation
 * schema's rule). A stored value of another shape (`null`, a string, an array, a number) is
 * invalid data: iterating it would write made-up labels (`"ab"` as `{"0":"a","1":"b"}`).
 */
function attributesJson(attributes: unknown, id: string): string {
  if (typeof attributes !== "object" || attributes === null || Array.isArray(attributes))
    throw invalid(`${id}: attributes is not an object`);
  const values = attributes as Readonly<Record<string, unknown>>;
  for (const key of Object.keys(values)) {
    if (typeof values[key] !== "string")
      throw invalid(`${id}: attribute ${JSON.stringify(key)} is not a string`);
  }
  return sortedJson(values as Readonly<Record<string, string>>);
}

/** The last timestamps that passed (rows of a batch share many, e.g. `ratedAt`): skip re-checking them. */
const checkedTimestamps: string[] = ["", "", "", ""];
let nextChecked = 0;

function timestamp(value: string, what: string, id: string): string {
  if (
    value === checkedTimestamps[0] ||
    value === checkedTimestamps[1] ||
    value === checkedTimestamps[2] ||
    value === checkedTimestamps[3]
  ) {
    if (value !== "") return value;
  }
  if (typeof value !== "string" || !UTC_TIMESTAMP.test(value) || Number.isNaN(Date.parse(value))) {
    throw invalid(`${id}: ${what} is not an ISO 8601 UTC timestamp`);
  }
  checkedTimestamps[nextChecked] = value;
  nextChecked = (nextChecked + 1) & 3;
  return value;
}

/**
 * Flattens one change-log entry into its {@link BillingRecord}.
 *
 * `previous` is the superseded version (its `total` and `currency`); it is required for a
 * version that supersedes another and must be absent for a first version. Nothing is guessed:
 * a correction without its previous version, a previous version in another currency, a
 * version n > 1 without `supersedes`, a malformed amount, seq or timestamp, or an unknown
 * currency throws `ExportError` of kind `invalid_data`.
 *
 * @example
 * const row = toBillingRecord({ seq: "42", record: v2 }, { total: "0.003", currency: "USD" });
 * row.cost;       // "0.002"
 * row.cost_delta; // "-0.001"
 * row.supersedes; // "req-1:0:openai:v1"
 */
export function toBillingRecord(entry: ChangeLogEntry, previous: PreviousVersion | undefined): BillingRecord {
  const record = entry.record;
  const id = record.ratedRecordId;
  if (typeof entry.seq !== "string" || (entry.seq !== "" && !SEQ.test(entry.seq))) {
    throw invalid(`${id}: seq is not a decimal integer string`);
  }
  if (!Number.isSafeInteger(record.version) || record.version < 1) {
    throw invalid(`${id}: version is not an integer ≥ 1`);
  }
  const supersedes = record.supersedes;
  if (record.version === 1 && supersedes !== undefined) {
    throw invalid(`${id}: a first version supersedes nothing`);
  }
  if (record.version > 1 && (supersedes === undefined || supersedes === "")) {
    throw invalid(`${id}: version ${record.version} names no superseded version`);
  }
  const cost = amount(record.total, "total", id);
  let costDelta = cost;
  if (supersedes !== undefined) {
    if (previous === undefined) throw invalid(`${id}: superseded version ${supersedes} was not found`);
    if (previous.currency !== record.currency) {
      throw invalid(`${id}: superseded version ${supersedes} is in another currency`);
    }
    costDelta = subtractDecimals(cost, amount(previous.total, "total", supersedes));
  } else if (previous !== undefined) {
    throw invalid(`${id}: a first version has no previous version`);
  }

  const obs = record.observation;
  const meters = obs.meters as Readonly<Record<string, number | undefined>>;
  let custom: Record<string, number> | undefined;
  for (const name in meters) {
    const q = meters[name];
    if (q === undefined) continue;
    if (!Number.isSafeInteger(q) || q < 0) throw invalid(`${id}: meter ${name} is not a safe integer ≥ 0`);
    if (name.startsWith("custom:")) {
      custom ??= {};
      custom[name.slice(7)] = q;
    }
  }
  const meter = (name: (typeof METER_COLUMNS)[number]): number => meters[name] ?? 0;
  const source = obs.source.kind === "corrected" ? `corrected:${obs.source.correctionOf}` : obs.source.kind;
  const outcome = obs.outcome.kind === "error" ? `error:${obs.outcome.code}` : obs.outcome.kind;
  const subject = obs.subject;

  return {
    schema: BILLING_EXPORT_SCHEMA,
    rated_record_id: id,
    event_id: record.eventId,
    version: record.version,
    supersedes: supersedes ?? "",
    tenant_id: subject.tenantId,
    org_id: subject.orgId ?? "",
    project_id: subject.projectId ?? "",
    api_key_id: subject.apiKeyId ?? "",
    end_user_id: subject.endUserId ?? "",
    feature: subject.feature ?? "",
    provider: obs.provider?.providerId ?? "",
    model: obs.model.billableModel,
    model_tier: obs.model.tier ?? "",
    vendor: obs.model.vendor ?? "",
    region: obs.model.region ?? "",
    input_tokens: meter("input_tokens"),
    cached_input_tokens: meter("cached_input_tokens"),
    cache_write_tokens: meter("cache_write_tokens"),
    cache_write_1h_tokens: meter("cache_write_1h_tokens"),
    output_tokens: meter("output_tokens"),
    reasoning_tokens: meter("reasoning_tokens"),
    audio_input_tokens: meter("audio_input_tokens"),
    audio_output_tokens: meter("audio_output_tokens"),
    image_count: meter("image_count"),
    image_input_tokens: meter("image_input_tokens"),
    image_output_tokens: meter("image_output_tokens"),
    web_search_requests: meter("web_search_requests"),
    web_fetch_requests: meter("web_fetch_requests"),
    cached_audio_input_tokens: meter("cached_audio_input_tokens"),
    custom_meters: custom === undefined ? "{}" : sortedJson(custom),
    cost,
    cost_delta: costDelta,
    cost_minor_units: minorUnits(cost, record.currency, id).toString(),
    currency: record.currency,
    snapshot_id: record.snapshotId,
    source,
    outcome,
    started_at: timestamp(obs.timing.startedAt, "startedAt", id),
    completed_at: timestamp(obs.timing.completedAt, "completedAt", id),
    rated_at: timestamp(record.ratedAt, "ratedAt", id),
    seq: entry.seq,
    attributes: obs.attributes === undefined ? "{}" : attributesJson(obs.attributes, id),
  };
}

/** The store failed, not the data: a lookup failing so is wrapped like a driver's error (`connection`). */
const STORE_FAILURES: ReadonlySet<string> = new Set([
  "store_busy",
  "schema_not_migrated",
  "schema_incompatible",
]);

/**
 * Finds the superseded version of every entry that supersedes one: first among the batch
 * itself, then through `lookup` (each id asked once). A version that neither finds is left
 * out; {@link buildBillingRows} then throws `invalid_data` for it.
 *
 * @example
 * const previous = await resolvePreviousVersions(page.items, (id) => store.get(id));
 * const rows = buildBillingRows(page.items, previous);
 */
export async function resolvePreviousVersions(
  entries: readonly ChangeLogEntry[],
  lookup?: PreviousVersionLookup,
  signal?: AbortSignal,
): Promise<Map<string, PreviousVersion>> {
  const found = new Map<string, PreviousVersion>();
  if (!entries.some((e) => e.record.supersedes !== undefined)) return found;
  const inBatch = new Map<string, RatedUsageRecord>();
  for (const e of entries) inBatch.set(e.record.ratedRecordId, e.record);
  for (const { record } of entries) {
    const id = record.supersedes;
    if (id === undefined || found.has(id)) continue;
    const local = inBatch.get(id);
    if (local !== undefined) {
      found.set(id, local);
      continue;
    }
    if (lookup === undefined) continue;
    signal?.throwIfAborted();
    let prev: PreviousVersion | undefined;
    try {
      prev = await lookup(id, signal);
    } catch (e) {
      if ((LatchError.isInstance(e) && !STORE_FAILURES.has(e.code)) || signal?.aborted) throw e;
      throw new ExportError({
        kind: "connection",
        reason: `looking up superseded version ${id} failed`,
        cause: e,
      });
    }
    if (prev !== undefined) found.set(id, { total: prev.total, currency: prev.currency });
  }
  return found;
}

/**
 * Flattens a batch of change-log entries, in the order given, checking that no seq and no
 * ratedRecordId appears twice. A superseded version is taken from the batch itself, else
 * from `previous` (superseded ratedRecordId → version, see {@link resolvePreviousVersions}).
 *
 * @example
 * const rows = buildBillingRows(page.items, await resolvePreviousVersions(page.items, lookup));
 */
export function buildBillingRows(
  entries: readonly ChangeLogEntry[],
  previous: ReadonlyMap<string, PreviousVersion>,
): BillingRecord[] {
  const inBatch = new Map<string, RatedUsageRecord>();
  for (const e of entries) {
    const id = e.record.ratedRecordId;
    if (inBatch.has(id)) throw invalid(`${id} appears twice in one batch`);
    inBatch.set(id, e.record);
  }
  const seqs = new Set<string>();
  const rows: BillingRecord[] = [];
  for (const entry of entries) {
    if (entry.seq !== "") {
      if (seqs.has(entry.seq)) throw invalid(`seq ${entry.seq} appears twice in one batch`);
      seqs.add(entry.seq);
    }
    const supersedes = entry.record.supersedes;
    const prev = supersedes === undefined ? undefined : (inBatch.get(supersedes) ?? previous.get(supersedes));
    rows.push(toBillingRecord(entry, prev));
  }
  return rows;
}

/**
 * Per-currency sums of `cost_delta`: the exact sum and that sum rounded once (half-even) to
 * the currency's minor units — not the sum of the rows' rounded costs. Currencies in code order.
 *
 * @example
 * totalsByCurrency(rows); // { USD: { exact: "0.006", minorUnits: 1n } }
 */
export function totalsByCurrency(
  rows: readonly BillingRecord[],
): Record<string, { exact: string; minorUnits: bigint }> {
  const byCurrency = new Map<string, string[]>();
  for (const row of rows) {
    let list = byCurrency.get(row.currency);
    if (list === undefined) {
      list = [];
      byCurrency.set(row.currency, list);
    }
    list.push(row.cost_delta);
  }
  const totals: Record<string, { exact: string; minorUnits: bigint }> = {};
  for (const currency of [...byCurrency.keys()].sort()) {
    const exact = sumDecimals(byCurrency.get(currency) ?? []);
    totals[currency] = { exact, minorUnits: minorUnits(exact, currency, "totals") };
  }
  return totals;
}

/** The result of {@link buildBillingExport}. */
export interface BillingExport {
  schema: typeof BILLING_EXPORT_SCHEMA;
  exportedAt: string;
  /** One row per version, in the order given. */
  rows: BillingRecord[];
  /**
   * Per currency, the sums of `cost_delta`: `exact`, and `minorUnits`, the exact sum rounded
   * once half-even (not the sum of the rounded rows).
   */
  totalsByCurrency: Record<string, { exact: string; minorUnits: bigint }>;
  /** The exact sum of every `cost_delta`, present only when the rows have at most one currency. */
  grandTotal?: string;
  /** Set instead of `grandTotal` when rows are in more than one currency: they are never summed. */
  grandTotalError?: "mixed_currencies";
}

/**
 * Builds the `latch.billing-export.v1` rows for a list of rated records outside any change
 * log (so `seq` is `""`): one row per version, in the order given. Every superseded version
 * must be in the list too, else `ExportError` `invalid_data`.
 *
 * @example
 * const out = buildBillingExport([v1, v2], "2026-03-02T00:00:00Z");
 * out.rows.map((r) => r.cost_delta);     // ["0.003", "-0.001"]
 * out.totalsByCurrency.USD;              // { exact: "0.002", minorUnits: 0n }
 * out.grandTotal;                        // "0.002"
 */
export function buildBillingExport(records: readonly RatedUsageRecord[], exportedAt: string): BillingExport {
  const at = parseWith(IsoTimestampSchema, exportedAt, "billing export", "exportedAt");
  const rows = buildBillingRows(
    records.map((record) => ({ seq: "", record })),
    new Map(),
  );
  const totals = totalsByCurrency(rows);
  const currencies = Object.keys(totals);
  const out: BillingExport = {
    schema: BILLING_EXPORT_SCHEMA,
    exportedAt: at,
    rows,
    totalsByCurrency: totals,
  };
  if (currencies.length > 1) out.grandTotalError = "mixed_currencies";
  else out.grandTotal = currencies[0] === undefined ? "0" : (totals[currencies[0]]?.exact ?? "0");
  return out;
}
