/**
 * Release 18's record writer statements 1-5 (record-writer.ts `statements()` before migration
 * 0019), with bound parameters, frozen: the parity test compares `record_batch` with them, and
 * the adversarial test runs them as an old pod writing next to the new one.
 */
const COLUMNS = `rated_record_id, event_id, version, hash, payload, currency, total, completed_ms,
  completed_text, completed_at, completed_day, provider, model, tenant_id, org_id, project_id,
  api_key_id, end_user_id, feature, success, input_tokens, output_tokens, cache_read_tokens,
  cache_write_tokens, total_tokens`;
export function release18Statements(q: string) {
  return [
    `INSERT INTO ${q}.observations (event_id, hash, payload, priced)
     SELECT b.event_id, b.hash, b.payload, b.priced
     FROM jsonb_to_recordset($1::jsonb) AS b(event_id text, hash text, payload jsonb, priced boolean)
     ON CONFLICT DO NOTHING RETURNING event_id`,
    `SELECT ${q}.append_observations($1::jsonb) AS ids`,
    `INSERT INTO ${q}.rated_records (${COLUMNS})
     SELECT ${COLUMNS.replace("completed_at", "completed_text::timestamptz")
       .split(",")
       .map((c) => `b.${c.trim()}`)
       .join(", ")}
     FROM jsonb_to_recordset($1::jsonb) AS b(rated_record_id text, event_id text, version integer,
       hash text, payload jsonb, currency text, total numeric, completed_ms bigint, completed_text text,
       completed_day text, provider text, model text, tenant_id text, org_id text, project_id text,
       api_key_id text, end_user_id text, feature text, success boolean, input_tokens bigint,
       output_tokens bigint, cache_read_tokens bigint, cache_write_tokens bigint, total_tokens bigint)
     WHERE NOT (SELECT EXISTS (SELECT 1 FROM ${q}.rated_records r WHERE r.event_id = b.event_id))
     ON CONFLICT DO NOTHING`,
    `UPDATE ${q}.observations o SET priced = true
     WHERE o.event_id = ANY ($1::text[]) AND NOT o.priced
       AND (SELECT EXISTS (SELECT 1 FROM ${q}.rated_records r WHERE r.event_id = o.event_id))`,
    `SELECT i.id AS event_id, c.rated_record_id,
       CASE WHEN c.xid = pg_current_xact_id_if_assigned() AND c.rated_record_id = ANY ($2::text[])
       THEN NULL ELSE c.payload END AS payload
     FROM unnest($1::text[]) AS i(id)
     CROSS JOIN LATERAL (
       SELECT r.rated_record_id, r.xid, r.payload FROM ${q}.rated_records r
       WHERE r.event_id = i.id ORDER BY r.version DESC LIMIT 1) c`,
  ] as const;
}
