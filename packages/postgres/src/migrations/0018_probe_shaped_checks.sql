-- Latch 0018: the idempotency checks of append_observations and put_rated_records probe the
-- id indexes once per batch row, whatever the planner believes about the tables.
--
-- Until now each check joined the batch (jsonb_to_recordset, which the planner always guesses
-- at 100 rows) to the whole table. On a table or a month partition that autovacuum has not
-- analysed yet (a fresh database, the first days of every month, right after a bulk load),
-- the planner took a hash join over a sequential scan of every partition: 10-20 ms per call at
-- 20,000 rows, growing with the table, on every write that met a stored id (each retry, each
-- record() of the record writer). A LATERAL … LIMIT 1 per row is an index probe on any
-- statistics. Same results, same errors; only the plans change.
-- compatible-from: 17

CREATE OR REPLACE FUNCTION append_observations(batch jsonb) RETURNS text[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  inserted text[];
  clash record;
BEGIN
  WITH ins AS (
    INSERT INTO observations (event_id, hash, payload)
    SELECT b.event_id, b.hash, b.payload
    FROM jsonb_to_recordset(batch) AS b(event_id text, hash text, payload jsonb)
    ON CONFLICT DO NOTHING
    RETURNING observations.event_id
  )
  SELECT coalesce(array_agg(ins.event_id), '{}') INTO inserted FROM ins;
  IF cardinality(inserted) = jsonb_array_length(batch) THEN
    RETURN inserted;
  END IF;
  SELECT b.event_id, o.hash AS existing, b.hash AS incoming INTO clash
  FROM jsonb_to_recordset(batch) AS b(event_id text, hash text)
  CROSS JOIN LATERAL (
    SELECT o.hash FROM observations o WHERE o.event_id = b.event_id LIMIT 1) o
  WHERE o.hash <> b.hash
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LT409', MESSAGE = 'idempotency_conflict',
      DETAIL = json_build_object('id', clash.event_id, 'existingHash', clash.existing, 'incomingHash', clash.incoming)::text;
  END IF;
  RETURN inserted;
END
$fn$;

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
    ON CONFLICT DO NOTHING
    RETURNING rated_records.rated_record_id
  )
  SELECT coalesce(array_agg(ins.rated_record_id), '{}') INTO inserted FROM ins;
  IF cardinality(inserted) < jsonb_array_length(batch) THEN
    SELECT b.rated_record_id, r.hash AS existing, b.hash AS incoming INTO clash
    FROM jsonb_to_recordset(batch) AS b(rated_record_id text, hash text)
    CROSS JOIN LATERAL (
      SELECT r.hash FROM rated_records r WHERE r.rated_record_id = b.rated_record_id LIMIT 1) r
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
    AND NOT (SELECT EXISTS (
      SELECT 1 FROM rated_record_keys p WHERE p.event_id = b.event_id AND p.version = b.version - 1))
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LT422', MESSAGE = 'superseded_version_missing',
      DETAIL = json_build_object('id', clash.rated_record_id)::text;
  END IF;
  SELECT e.item->>'rated_record_id' AS rated_record_id, p.currency AS expected INTO clash
  FROM jsonb_array_elements(batch) WITH ORDINALITY AS e(item, n)
  CROSS JOIN LATERAL (
    SELECT r.currency FROM rated_records r
    WHERE r.event_id = (e.item->>'event_id') AND r.version = (e.item->>'version')::integer - 1
    LIMIT 1) p
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
