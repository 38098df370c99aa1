-- Latch 0008: one currency per event. put_rated_records (0001) also refuses a version whose
-- currency differs from the version it supersedes (stored, or earlier in the same batch):
-- SQLSTATE LT412 names the refused ratedRecordId and the currency it must have, and rolls the
-- whole statement back, so nothing of the batch is written. Before this, such a correction was
-- stored and then stopped the billing export for good (its cost delta cannot be computed).
-- Versions stored before this migration are left as they are. Append-only: never edit.
-- compatible-from: 6

CREATE OR REPLACE FUNCTION put_rated_records(batch jsonb) RETURNS text[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  inserted text[];
  clash record;
BEGIN
  WITH ins AS (
    INSERT INTO rated_records (
      rated_record_id, event_id, version, hash, payload, currency, total, completed_ms,
      completed_text, completed_at, completed_day, provider, model, tenant_id, org_id,
      project_id, api_key_id, end_user_id, feature, success, input_tokens, output_tokens,
      cache_read_tokens, cache_write_tokens, total_tokens)
    SELECT b.rated_record_id, b.event_id, b.version, b.hash, b.payload, b.currency, b.total,
      b.completed_ms, b.completed_text, b.completed_text::timestamptz, b.completed_day,
      b.provider, b.model, b.tenant_id, b.org_id, b.project_id, b.api_key_id, b.end_user_id,
      b.feature, b.success, b.input_tokens, b.output_tokens, b.cache_read_tokens,
      b.cache_write_tokens, b.total_tokens
    FROM jsonb_to_recordset(batch) AS b(
      rated_record_id text, event_id text, version integer, hash text, payload jsonb,
      currency text, total numeric, completed_ms bigint, completed_text text,
      completed_day text, provider text, model text, tenant_id text, org_id text,
      project_id text, api_key_id text, end_user_id text, feature text, success boolean,
      input_tokens bigint, output_tokens bigint, cache_read_tokens bigint,
      cache_write_tokens bigint, total_tokens bigint)
    ON CONFLICT (rated_record_id) DO NOTHING
    RETURNING rated_records.rated_record_id
  )
  SELECT coalesce(array_agg(ins.rated_record_id), '{}') INTO inserted FROM ins;
  IF cardinality(inserted) < jsonb_array_length(batch) THEN
    SELECT r.rated_record_id, r.hash AS existing, b.hash AS incoming INTO clash
    FROM jsonb_to_recordset(batch) AS b(rated_record_id text, hash text)
    JOIN rated_records r ON r.rated_record_id = b.rated_record_id
    WHERE r.hash <> b.hash
    LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION USING ERRCODE = 'LT409', MESSAGE = 'idempotency_conflict',
        DETAIL = json_build_object('id', clash.rated_record_id, 'existingHash', clash.existing, 'incomingHash', clash.incoming)::text;
    END IF;
  END IF;
  SELECT b.rated_record_id INTO clash
  FROM jsonb_to_recordset(batch) AS b(rated_record_id text, event_id text, version integer)
  WHERE b.version > 1 AND b.rated_record_id = ANY (inserted)
    AND NOT EXISTS (
      SELECT 1 FROM rated_records p WHERE p.event_id = b.event_id AND p.version = b.version - 1)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LT422', MESSAGE = 'superseded_version_missing',
      DETAIL = json_build_object('id', clash.rated_record_id)::text;
  END IF;
  -- A new statement: it sees the versions inserted above, so a correction of a version
  -- earlier in the same batch is compared with it. Ordered by the batch, so the first refused
  -- record is the one reported.
  SELECT e.item->>'rated_record_id' AS rated_record_id, p.currency AS expected INTO clash
  FROM jsonb_array_elements(batch) WITH ORDINALITY AS e(item, n)
  JOIN rated_records p
    ON p.event_id = (e.item->>'event_id') AND p.version = (e.item->>'version')::integer - 1
  WHERE (e.item->>'version')::integer > 1 AND (e.item->>'rated_record_id') = ANY (inserted)
    AND p.currency <> (e.item->>'currency')
  ORDER BY e.n
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LT412', MESSAGE = 'currency_mismatch',
      DETAIL = json_build_object('id', clash.rated_record_id, 'expected', clash.expected)::text;
  END IF;
  RETURN inserted;
END
$fn$;
