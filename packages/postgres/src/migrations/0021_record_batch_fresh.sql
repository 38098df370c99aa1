-- Latch 0021: record_batch skips the statements that cannot change anything for events it has
-- just inserted, which is most of the fixed cost of a lone event or a small batch.
--
-- Measured on 0020 (one connection, one-event calls): the hash check's append_observations ran
-- an insert of every checked id again (the key trigger a second time, its horizon read) and
-- then its comparison, and the priced mark probed every partition's index, for rows that step
-- 1 had inserted in the same call, with their hash and priced. Now, same signature, results,
-- errors and order of effects as 0020:
-- 1. unchanged, except that it keeps the hash and the priced flag of each row it inserts;
-- 2. on the triggers' path (a single event, or rows moving), append_observations(p_checks) is
--    skipped when every check names an id step 1 inserted in this call with the same hash (and
--    no completion month): each of its rows would be skipped by the key this call inserted, and
--    its comparison would find the hash it compares with. An id sent twice with another hash,
--    an id stored before, a NULL, a month in a check: the call runs as before (LT409, 22L10,
--    23502 with the same DETAIL). On the set-based path, 0020's test (whether the call must run)
--    and the new one (whether any check is not of an id inserted here with its hash) are one
--    statement, and the comparison runs only when some check is not;
-- 3. unchanged;
-- 4. the priced mark is skipped when every id of p_ids was inserted priced by step 1 (the
--    UPDATE's condition `NOT priced` holds for none of them: the key of each is this call's, so
--    its row is the only one);
-- 5. unchanged.
-- While latch.partition_move is on (no key skips a row: the calls insert) both run as before.
-- Assumed, as by 0020's set-based path: every stored observation has its key. A row stored
-- without one (inserted with latch.keys_written on by hand, a detached partition attached
-- again after retention deleted its keys) is outside it: 0020 stored a second row of its id
-- too (same hash), but could raise LT409 for another hash (its probe met the old row first)
-- and marked the old row priced, which 0021 does not.
-- Measured, backend CPU of the record writer's whole script per call (one connection, medians
-- of 3 interleaved rounds): one event 1.80 -> 1.21 ms, two 1.90 -> 1.44, eight 3.44 -> 3.19,
-- 64 18.0 -> 16.3.
-- Only the function changes: releases from 17 on keep working while and after it applies.
-- Append-only: never edit.
-- compatible-from: 17

CREATE OR REPLACE FUNCTION record_batch(p_observations jsonb, p_checks jsonb, p_records jsonb,
  p_ids text[], p_ours text[])
RETURNS TABLE (n integer, appended boolean, current_id bytea, current_payload bytea)
LANGUAGE plpgsql SET search_path FROM CURRENT SET plan_cache_mode = force_generic_plan AS $fn$
DECLARE
  inserted text[];
  -- The hash of each id of inserted (same position), and the ids of inserted stored priced.
  hashes text[];
  priced_ids text[];
  seen text[];
  horizon text;
  written text := current_setting('latch.keys_written', true);
  -- The triggers' own path, row by row, as 0019: maintain_partitions' moves write no keys; and
  -- a batch of one event (groupCommit: false, a single session), for which the set-based
  -- statements cost more than the trigger calls they save (measured again with 0021's steps,
  -- backend CPU of a whole one-event call: ~1.2 ms row by row, ~1.35 ms set-based; two and
  -- three events cost the same either way, within the noise, and eight less set-based).
  -- Anything but an array too: 0019's statement says why not.
  move boolean := current_setting('latch.partition_move', true) IS NOT DISTINCT FROM 'on';
  per_row boolean := move
    OR jsonb_typeof(p_observations) IS DISTINCT FROM 'array'
    OR jsonb_array_length(p_observations) < 2;
  refused boolean := false;
  call_check boolean;
  compare boolean;
  clash record;
BEGIN
  -- 1. The new observations: their keys (in id order), then their rows (in batch order).
  IF NOT per_row THEN
    -- The horizon is read after this transaction holds the parents' lock, as the triggers
    -- read it after their statement's: a retention apply holding its ACCESS EXCLUSIVE lock
    -- (its horizon raised, a month dropped, not yet committed) is waited for here, so a batch
    -- never writes a dropped month's rows under the horizon it read before (they landed in
    -- DEFAULT, their keys deleted after: rows without keys, and every later apply refused).
    LOCK TABLE ONLY observations, rated_records IN ROW EXCLUSIVE MODE;
    SELECT h.before_month INTO horizon FROM retention_horizon h;
    PERFORM set_config('latch.keys_written', 'on', true);
    WITH b AS MATERIALIZED (
      SELECT b.event_id, b.hash, b.payload, b.priced, b.n,
        left(b.payload #>> '{timing,completedAt}', 7) AS month
      FROM ROWS FROM (jsonb_to_recordset(p_observations)
        AS (event_id text COLLATE "C", hash text, payload jsonb, priced boolean))
        WITH ORDINALITY AS b(event_id, hash, payload, priced, n)
    ), stop AS (
      SELECT EXISTS (
        SELECT 1 FROM b
        WHERE b.event_id IS NULL OR b.hash IS NULL OR b.payload IS NULL OR b.priced IS NULL
          OR b.month < horizon) AS yes
    ), d AS (
      SELECT DISTINCT ON (b.event_id) b.event_id, b.hash, b.payload, b.priced, b.n, b.month
      FROM b
      ORDER BY b.event_id, b.n
    ), k AS (
      INSERT INTO observation_keys (event_id, month)
      SELECT d.event_id, d.month
      FROM d
      WHERE NOT (SELECT stop.yes FROM stop)
      ORDER BY d.event_id
      ON CONFLICT (event_id) DO NOTHING
      RETURNING observation_keys.event_id
    ), ins AS (
      INSERT INTO observations (event_id, hash, payload, priced)
      SELECT d.event_id, d.hash, d.payload, d.priced
      FROM d
      WHERE d.event_id IN (SELECT k.event_id FROM k)
      ORDER BY d.n
      ON CONFLICT DO NOTHING
      RETURNING observations.event_id, observations.hash, observations.priced
    )
    SELECT (SELECT stop.yes FROM stop), i.ids, i.hashes, i.priced, (SELECT array_agg(b.event_id) FROM b)
    INTO refused, inserted, hashes, priced_ids, seen
    FROM (
      SELECT coalesce(array_agg(ins.event_id), '{}') AS ids, coalesce(array_agg(ins.hash), '{}') AS hashes,
        coalesce(array_agg(ins.event_id) FILTER (WHERE ins.priced), '{}') AS priced
      FROM ins) i;
    PERFORM set_config('latch.keys_written', 'off', true);
  ELSIF written IS NOT DISTINCT FROM 'on' THEN
    PERFORM set_config('latch.keys_written', 'off', true);
  END IF;
  IF per_row OR refused THEN
    -- 0019's statement: the triggers refuse the row they refused (22L10, 23502) or skip it.
    WITH ins AS (
      INSERT INTO observations (event_id, hash, payload, priced)
      SELECT b.event_id, b.hash, b.payload, b.priced
      FROM jsonb_to_recordset(p_observations) AS b(event_id text, hash text, payload jsonb, priced boolean)
      ON CONFLICT DO NOTHING
      RETURNING observations.event_id, observations.hash, observations.priced
    )
    SELECT coalesce(array_agg(ins.event_id), '{}'), coalesce(array_agg(ins.hash), '{}'),
      coalesce(array_agg(ins.event_id) FILTER (WHERE ins.priced), '{}')
    INTO inserted, hashes, priced_ids FROM ins;
  END IF;

  -- 2. The hash check. A check of an id that step 1 inserted in this call with the same hash
  -- can neither insert (its key is stored: the row is skipped) nor conflict (the stored hash is
  -- its own); when every check is one (and names no completion month, which the key trigger
  -- would hold against the horizon), append_observations(p_checks) is skipped on the triggers'
  -- path. Not while rows move (latch.partition_move: no key skips the rows, the call inserts
  -- them, as 0019). Otherwise as 0020.
  IF per_row THEN
    IF move OR jsonb_typeof(p_checks) IS DISTINCT FROM 'array' OR EXISTS (
      SELECT 1 FROM jsonb_to_recordset(p_checks) AS c(event_id text, hash text, payload jsonb)
      WHERE c.payload #>> '{timing,completedAt}' IS NOT NULL
        OR NOT EXISTS (
          SELECT 1 FROM unnest(inserted, hashes) AS s(id, hash)
          WHERE s.id = c.event_id AND s.hash = c.hash))
    THEN
      PERFORM append_observations(p_checks);
    END IF;
  ELSE
    -- 0020's two questions in one pass: whether append_observations must run (a check of an id
    -- that step 1 neither wrote nor found, or a month before the horizon), else whether any
    -- check is not one of an id inserted by step 1 with its hash (only those may conflict).
    -- Hashed subplans (seen holds no NULL here: step 1 refused it; nor does hashes).
    SELECT coalesce(bool_or(c.event_id IS NULL OR left(c.payload #>> '{timing,completedAt}', 7) < horizon
        OR c.event_id NOT IN (SELECT s.id FROM unnest(seen) AS s(id))), false),
      coalesce(bool_or((c.event_id, c.hash) NOT IN (
        SELECT s.id, s.hash FROM unnest(inserted, hashes) AS s(id, hash))), true)
    INTO call_check, compare
    FROM jsonb_to_recordset(p_checks) AS c(event_id text COLLATE "C", hash text, payload jsonb);
    IF call_check THEN
      PERFORM append_observations(p_checks);
    ELSIF compare AND jsonb_array_length(p_checks) > 0 THEN
      SELECT b.event_id, o.hash AS existing, b.hash AS incoming INTO clash
      FROM jsonb_to_recordset(p_checks) AS b(event_id text, hash text)
      CROSS JOIN LATERAL (
        SELECT o.hash FROM observations o WHERE o.event_id = b.event_id LIMIT 1) o
      WHERE o.hash <> b.hash
      LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'LT409', MESSAGE = 'idempotency_conflict',
          DETAIL = json_build_object('id', clash.event_id, 'existingHash', clash.existing, 'incomingHash', clash.incoming)::text;
      END IF;
    END IF;
  END IF;

  -- 3. Version 1 of events without a record: keys ordered by event (then version and id), rows in
  -- batch order. ON CONFLICT: a version another writer stored meanwhile stands, and step 5
  -- answers it.
  refused := false;
  IF NOT per_row THEN
    PERFORM set_config('latch.keys_written', 'on', true);
    WITH b AS MATERIALIZED (
      SELECT b.rated_record_id, b.event_id, b.version, b.hash, b.payload, b.currency, b.total,
        b.completed_ms, b.completed_text, b.completed_text::timestamptz AS completed_at,
        b.completed_day, b.provider, b.model, b.tenant_id, b.org_id, b.project_id, b.api_key_id,
        b.end_user_id, b.feature, b.success, b.input_tokens, b.output_tokens,
        b.cache_read_tokens, b.cache_write_tokens, b.total_tokens, b.n,
        -- month_of_ms(completed_ms), inline: the SQL function is not inlined (to_char is only
        -- stable), so each call ran as a statement of its own.
        to_char(to_timestamp(b.completed_ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM') AS month
      FROM ROWS FROM (jsonb_to_recordset(p_records) AS (
        rated_record_id text COLLATE "C", event_id text COLLATE "C", version integer, hash text,
        payload jsonb, currency text, total numeric, completed_ms bigint, completed_text text,
        completed_day text, provider text, model text, tenant_id text, org_id text,
        project_id text, api_key_id text, end_user_id text, feature text, success boolean,
        input_tokens bigint, output_tokens bigint, cache_read_tokens bigint,
        cache_write_tokens bigint, total_tokens bigint))
        WITH ORDINALITY AS b(
          rated_record_id, event_id, version, hash, payload, currency, total, completed_ms,
          completed_text, completed_day, provider, model, tenant_id, org_id, project_id,
          api_key_id, end_user_id, feature, success, input_tokens, output_tokens,
          cache_read_tokens, cache_write_tokens, total_tokens, n)
      WHERE NOT (SELECT EXISTS (SELECT 1 FROM rated_records r WHERE r.event_id = b.event_id))
    ), stop AS (
      SELECT EXISTS (
        SELECT 1 FROM b
        WHERE b.rated_record_id IS NULL OR b.event_id IS NULL OR b.version IS NULL
          OR b.hash IS NULL OR b.payload IS NULL OR b.currency IS NULL OR b.total IS NULL
          OR b.completed_ms IS NULL OR b.completed_text IS NULL OR b.completed_at IS NULL
          OR b.completed_day IS NULL OR b.provider IS NULL OR b.model IS NULL
          OR b.tenant_id IS NULL OR b.org_id IS NULL OR b.project_id IS NULL
          OR b.api_key_id IS NULL OR b.end_user_id IS NULL OR b.feature IS NULL
          OR b.success IS NULL OR b.input_tokens IS NULL OR b.output_tokens IS NULL
          OR b.cache_read_tokens IS NULL OR b.cache_write_tokens IS NULL
          OR b.total_tokens IS NULL OR b.month < horizon) AS yes
    ), d AS (
      SELECT DISTINCT ON (b.rated_record_id) b.*
      FROM b
      ORDER BY b.rated_record_id, b.n
    ), k AS (
      INSERT INTO rated_record_keys (rated_record_id, event_id, version, month)
      SELECT d.rated_record_id, d.event_id, d.version, d.month
      FROM d
      WHERE NOT (SELECT stop.yes FROM stop)
      ORDER BY d.event_id, d.version, d.rated_record_id
      ON CONFLICT (rated_record_id) DO NOTHING
      RETURNING rated_record_keys.rated_record_id
    ), ins AS (
      INSERT INTO rated_records (
        rated_record_id, event_id, version, hash, payload, currency, total, completed_ms,
        completed_text, completed_at, completed_day, provider, model, tenant_id, org_id,
        project_id, api_key_id, end_user_id, feature, success, input_tokens, output_tokens,
        cache_read_tokens, cache_write_tokens, total_tokens)
      SELECT d.rated_record_id, d.event_id, d.version, d.hash, d.payload, d.currency, d.total,
        d.completed_ms, d.completed_text, d.completed_at, d.completed_day, d.provider, d.model,
        d.tenant_id, d.org_id, d.project_id, d.api_key_id, d.end_user_id, d.feature, d.success,
        d.input_tokens, d.output_tokens, d.cache_read_tokens, d.cache_write_tokens,
        d.total_tokens
      FROM d
      WHERE d.rated_record_id IN (SELECT k.rated_record_id FROM k)
      ORDER BY d.n
      ON CONFLICT DO NOTHING
    )
    SELECT stop.yes INTO refused FROM stop;
    PERFORM set_config('latch.keys_written', 'off', true);
  END IF;
  IF per_row OR refused THEN
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
  END IF;
  -- Back to what the caller had: nothing after this call skips its keys.
  IF (NOT per_row OR written IS NOT DISTINCT FROM 'on') AND written IS DISTINCT FROM 'off' THEN
    PERFORM set_config('latch.keys_written', coalesce(written, ''), true);
  END IF;

  -- 4. The priced mark, as 0019, unless every id of p_ids is one that step 1 inserted priced in
  -- this call (its only row: its key is this call's), which the statement would leave as it is.
  -- Not while rows move (no keys: an id may have other rows).
  IF move OR (p_ids <@ priced_ids) IS NOT TRUE THEN
    UPDATE observations o SET priced = true
    WHERE o.event_id = ANY (p_ids) AND NOT o.priced
      AND (SELECT EXISTS (SELECT 1 FROM rated_records r WHERE r.event_id = o.event_id));
  END IF;

  -- 5. as 0019.

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

-- As 0019: every function of the schema searches the schema, then pg_temp (the migration may
-- have run with a search_path that does not name pg_temp).
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
