-- Latch 0019: the record writer's batch as one PL/pgSQL function, record_batch, so its five
-- statements are planned once per connection, not once per batch.
--
-- Until now the record writer sent the five statements with the batch inlined as literals:
-- the server parsed and planned four of them again for every batch (about 3.3 ms per batch,
-- 2 ms of it for the 25-column rated_records INSERT; half the server's CPU per record at ~32
-- records a batch). PL/pgSQL keeps its statements' plans for the life of the session, so a
-- pool's long-lived connections plan them once. Same statements, in the same order, with the
-- same shapes, results and errors: only where they are planned changes. It only adds a
-- function, so releases from 17 on keep working while it applies. Append-only: never edit.
-- compatible-from: 17

-- One write of the record writer (`PostgresObservationStore.recordWriter`), in order:
-- 1. insert the observations that are new (`p_observations`: event_id, hash, payload and
--    `priced`, already true when a rated record comes with the event: one row version, not an
--    insert and then an update), keeping the ids inserted;
-- 2. compare the hash of every id with the stored one (`append_observations` with empty
--    payloads, `p_checks`: every id is stored by now, so it inserts nothing and raises LT409
--    on another payload, which aborts the whole transaction);
-- 3. insert the rated records (`p_records`, version 1) of events that have none yet (a stored
--    version wins, as the step-by-step path's `current()` lookup would find it);
-- 4. mark priced the events (`p_ids`) stored unpriced before that now have a record;
-- 5. answer each event of `p_ids` once, by its position in `p_ids` (`n`, from 1): whether
--    step 1 appended it, and its current record, one index probe per event (the payload NULL
--    for a version this transaction stored from the call, one of `p_ours`: the caller holds it
--    already). The record's id and payload go back as their UTF-8 bytes, and the event as its
--    position, not as text: the server converts text to the session's client_encoding, which
--    the client may not decode as such (node-postgres reads every text as UTF-8; under SJIS a
--    non-ASCII id came back as other characters, so an event just appended was answered
--    `already_exists` without its record).
-- Each statement sees what committed before it started (READ COMMITTED; a volatile function
-- takes a new snapshot per statement), so a concurrent writer's row is found, not
-- overwritten. The lookups are shaped so the planner probes the indexes even before the
-- tables were analysed (a per-row subplan, not a semi- or anti-join; a LATERAL LIMIT 1 per
-- event), in custom and generic plans alike: a scan of rated_records per batch would cost more
-- than the batch saves (an unanalysed month partition of 20,000 rows made step 4 a hash
-- semi-join over every partition, 88 ms per call; 0018 does the same for step 2's check).
--
-- plan_cache_mode = force_generic_plan: left to itself, the plan cache plans a statement
-- again for each of its first five calls, and for good when the generic plan's estimate
-- exceeds the custom ones' (the priced mark of a one-event batch, whose custom plan knows the
-- array holds one id, was planned again on every call). The generic plans probe the same
-- indexes (checked with auto_explain on unanalysed partitions), so each connection plans once.
CREATE FUNCTION record_batch(p_observations jsonb, p_checks jsonb, p_records jsonb,
  p_ids text[], p_ours text[])
RETURNS TABLE (n integer, appended boolean, current_id bytea, current_payload bytea)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  inserted text[];
BEGIN
  WITH ins AS (
    INSERT INTO observations (event_id, hash, payload, priced)
    SELECT b.event_id, b.hash, b.payload, b.priced
    FROM jsonb_to_recordset(p_observations) AS b(event_id text, hash text, payload jsonb, priced boolean)
    ON CONFLICT DO NOTHING
    RETURNING observations.event_id
  )
  SELECT coalesce(array_agg(ins.event_id), '{}') INTO inserted FROM ins;

  PERFORM append_observations(p_checks);

  -- Version 1 only: nothing to supersede, no currency to match. ON CONFLICT: a version another
  -- writer stored meanwhile stands, and step 5 answers it.
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
  FROM jsonb_to_recordset(p_records) AS b(
    rated_record_id text, event_id text, version integer, hash text, payload jsonb,
    currency text, total numeric, completed_ms bigint, completed_text text,
    completed_day text, provider text, model text, tenant_id text, org_id text,
    project_id text, api_key_id text, end_user_id text, feature text, success boolean,
    input_tokens bigint, output_tokens bigint, cache_read_tokens bigint,
    cache_write_tokens bigint, total_tokens bigint)
  WHERE NOT (SELECT EXISTS (SELECT 1 FROM rated_records r WHERE r.event_id = b.event_id))
  ON CONFLICT DO NOTHING;

  UPDATE observations o SET priced = true
  WHERE o.event_id = ANY (p_ids) AND NOT o.priced
    AND (SELECT EXISTS (SELECT 1 FROM rated_records r WHERE r.event_id = o.event_id));

  RETURN QUERY
  SELECT i.n::integer, i.event_id = ANY (inserted), convert_to(c.rated_record_id, 'UTF8'),
    CASE WHEN c.xid = pg_current_xact_id_if_assigned() AND c.rated_record_id = ANY (p_ours)
    THEN NULL ELSE convert_to(c.payload::text, 'UTF8') END
  FROM unnest(p_ids) WITH ORDINALITY AS i(event_id, n)
  LEFT JOIN LATERAL (
    SELECT r.rated_record_id, r.xid, r.payload FROM rated_records r
    WHERE r.event_id = i.event_id ORDER BY r.version DESC LIMIT 1) c ON true;
END
$fn$;

-- Every function of the schema resolves its tables in the schema, never in the session's
-- temporary schema. A search_path that does not name pg_temp searches it FIRST for tables, so
-- a session holding a temporary table named `observations`, `rated_records`,
-- `observation_keys`, … (any purpose, any code sharing the connection) had record_batch, the
-- key triggers and append_observations write into it: the calls answered `appended` and the
-- rows vanished with the session. Naming pg_temp last leaves it only what the schema lacks
-- (maintain_partitions' own move tables). Functions that already name it are left as they are.
DO $pin$
DECLARE
  f record;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS fn, substr(c.setting, length('search_path=') + 1) AS path
    FROM pg_proc p
    CROSS JOIN LATERAL unnest(p.proconfig) AS c(setting)
    WHERE p.pronamespace = (SELECT n.oid FROM pg_namespace n WHERE n.nspname = current_schema())
      AND c.setting LIKE 'search_path=%' AND c.setting NOT LIKE '%pg\_temp%'
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = %s, pg_temp', f.fn, f.path);
  END LOOP;
END
$pin$;
