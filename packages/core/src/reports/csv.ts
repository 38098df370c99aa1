/**
 * RFC 4180 CSV writers for reports.
 *
 * Every cell goes through {@link csvCell}: text cells that a spreadsheet would run as a
 * formula (first character `=`, `+`, `-`, `@`, TAB, CR, or `'`) are written `'`-prefixed and
 * quoted (OWASP's CSV-injection rule); the numeric columns Latch produces (token counts,
 * versions, amounts) stay plain numbers, a negative cost included.
 */
import { z } from "zod";
import { CorruptRecordError, LatchValidationError } from "../errors/index.js";
import { type CsvCellKind, csvCell } from "../export/csv-cell.js";
import { canonicalDecimal, SIGNED_DECIMAL } from "../money/decimal.js";
import { BUILTIN_METERS } from "../schemas/meters.js";
import type { UsageOutcome } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import type { RatedUsageRecord } from "../schemas/rating.js";
import { SUMMARY_GROUP_KEYS, type SummaryGroupKey, type SummaryRow } from "./query.js";

const CRLF = "\r\n";

/**
 * One RFC 4180 record, terminated by CRLF: each field written by {@link csvCell} (quoted when
 * it contains `,`, `"`, CR or LF, inner quotes doubled; a text field starting with `=`, `+`,
 * `-`, `@`, TAB, CR or `'` prefixed with `'` and quoted against formula injection), joined by
 * `,`. `kinds[i]` says how field `i` is written (`text` when absent; `number` keeps a plain
 * decimal such as `-0.5` as it is). A row of a single empty field is written as `""` so that
 * it is not read as a blank line.
 *
 * @throws LatchValidationError when `fields` is empty (a CSV record has at least one field).
 * @example
 * csvRow(["a", "b,c", 'say "hi"']);            // 'a,"b,c","say ""hi"""\r\n'
 * csvRow(["=1+1", "-0.5"], ["text", "number"]); // '"\'=1+1",-0.5\r\n'
 */
export function csvRow(fields: readonly string[], kinds?: readonly CsvCellKind[]): string {
  if (fields.length === 0) throw LatchValidationError.at("CSV row", "fields", "must have at least one field");
  if (fields.length === 1 && fields[0] === "") return `""${CRLF}`;
  let out = csvCell(fields[0] as string, kinds?.[0]);
  for (let i = 1; i < fields.length; i++) out += `,${csvCell(fields[i] as string, kinds?.[i])}`;
  return out + CRLF;
}

/** CSV column name of each summary group key (snake_case, like every other column). */
export const SUMMARY_GROUP_COLUMNS: Readonly<Record<SummaryGroupKey, string>> = {
  provider: "provider",
  model: "model",
  day: "day",
  tenantId: "tenant_id",
  orgId: "org_id",
  projectId: "project_id",
  apiKeyId: "api_key_id",
  endUserId: "end_user_id",
  feature: "feature",
};

const SUMMARY_VALUE_COLUMNS = [
  "input_tokens",
  "output_tokens",
  "cache_read_tokens",
  "cache_write_tokens",
  "total_tokens",
  "requests",
  "successes",
  "failures",
  "currency",
  "cost",
] as const;

const GroupBySchema = z
  .array(z.enum(SUMMARY_GROUP_KEYS))
  .max(SUMMARY_GROUP_KEYS.length)
  .refine((keys) => new Set(keys).size === keys.length, { message: "lists a key twice" });

/**
 * Renders {@link SummaryRow}s as CSV with a header row. Columns: the `groupBy` keys in order
 * (snake_case: `tenantId` → `tenant_id`, see {@link SUMMARY_GROUP_COLUMNS}), then
 * input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, total_tokens, requests,
 * successes, failures, currency, cost.
 *
 * One CSV row per (group, currency), currencies in code order, so amounts in different
 * currencies are never on one line. The token and request columns are the group's totals and
 * repeat on each of its currency rows: do not sum them across currency rows. A group without
 * any cost gets one row with empty currency and cost.
 *
 * @example
 * summaryToCsv(summarize(records, { start, end, groupBy: ["model"] }), ["model"]);
 * // "model,input_tokens,…,currency,cost\r\ngpt-4o,1200,…,USD,0.0042\r\n"
 */
export function summaryToCsv(rows: SummaryRow[], groupBy: readonly SummaryGroupKey[]): string {
  const keys = parseWith(GroupBySchema, groupBy, "summary CSV groupBy", "groupBy");
  let out = csvRow([...keys.map((k) => SUMMARY_GROUP_COLUMNS[k]), ...SUMMARY_VALUE_COLUMNS]);
  // Group values are text; every value column but `currency` is a number Latch computed.
  const kinds: CsvCellKind[] = [
    ...keys.map((): CsvCellKind => "text"),
    ...SUMMARY_VALUE_COLUMNS.map((c): CsvCellKind => (c === "currency" ? "text" : "number")),
  ];
  for (const row of rows) {
    const head = [
      ...keys.map((k) => row.group[k] ?? ""),
      String(row.inputTokens),
      String(row.outputTokens),
      String(row.cacheReadTokens),
      String(row.cacheWriteTokens),
      String(row.totalTokens),
      String(row.requests),
      String(row.successes),
      String(row.failures),
    ];
    const currencies = Object.keys(row.costByCurrency).sort();
    if (currencies.length === 0) {
      out += csvRow([...head, "", ""], kinds);
      continue;
    }
    for (const currency of currencies) {
      out += csvRow([...head, currency, row.costByCurrency[currency] ?? ""], kinds);
    }
  }
  return out;
}

const LINE_METERS = BUILTIN_METERS;

const LINES_HEADER = [
  "completed_at",
  "event_id",
  "rated_record_id",
  "version",
  "tenant_id",
  "org_id",
  "project_id",
  "api_key_id",
  "end_user_id",
  "feature",
  "provider",
  "model",
  ...LINE_METERS,
  "outcome",
  "currency",
  "cost",
] as const;

/** `version`, the meters and `cost` are numbers Latch produces; every other column is text. */
const LINES_KINDS: readonly CsvCellKind[] = LINES_HEADER.map((c) =>
  c === "version" || c === "cost" || (LINE_METERS as readonly string[]).includes(c) ? "number" : "text",
);

function cost(record: RatedUsageRecord): string {
  if (!SIGNED_DECIMAL.test(record.total)) {
    throw new CorruptRecordError({ id: record.ratedRecordId, reason: "total is not a plain decimal string" });
  }
  return canonicalDecimal(record.total);
}

/** `success`, `timeout`, `unknown`, or `error:<code>`. */
function outcomeText(outcome: UsageOutcome): string {
  return outcome.kind === "error" ? `error:${outcome.code}` : outcome.kind;
}

/**
 * Renders rated records (e.g. a `selectLines` page) as CSV with a header row, one row per
 * record in the order given. Columns: completed_at, event_id, rated_record_id, version,
 * tenant_id, org_id, project_id, api_key_id, end_user_id, feature, provider, model, each
 * built-in meter (input_tokens, cached_input_tokens, cache_write_tokens,
 * cache_write_1h_tokens, output_tokens, reasoning_tokens, audio_input_tokens,
 * audio_output_tokens, image_count, image_input_tokens, image_output_tokens,
 * web_search_requests, web_fetch_requests, cached_audio_input_tokens; a missing meter is `0`;
 * custom meters are not included),
 * outcome (`success`, `timeout`, `unknown` or `error:<code>`), currency, cost (the record's
 * exact total, canonical). A missing subject field or provider is an empty field.
 *
 * @example
 * linesToCsv(selectLines(records, { start, end, limit: 1000 }).items);
 * // "completed_at,event_id,…,outcome,currency,cost\r\n2026-03-01T12:00:01Z,req-1:0:openai,…,success,USD,0.0042\r\n"
 */
export function linesToCsv(records: RatedUsageRecord[]): string {
  let out = csvRow(LINES_HEADER);
  for (const record of records) {
    const obs = record.observation;
    out += csvRow(
      [
        obs.timing.completedAt,
        record.eventId,
        record.ratedRecordId,
        String(record.version),
        obs.subject.tenantId,
        obs.subject.orgId ?? "",
        obs.subject.projectId ?? "",
        obs.subject.apiKeyId ?? "",
        obs.subject.endUserId ?? "",
        obs.subject.feature ?? "",
        obs.provider?.providerId ?? "",
        obs.model.billableModel,
        ...LINE_METERS.map((m) => String(obs.meters[m] ?? 0)),
        outcomeText(obs.outcome),
        record.currency,
        cost(record),
      ],
      LINES_KINDS,
    );
  }
  return out;
}
