-- Latch 0017: observations and rated records (and so the change log, which is rated_records in
-- (xid, id) order) partitioned by the UTC month of the event's completion time
-- (observation.timing.completedAt, an ISO 8601 UTC text, so its first 7 characters are the
-- month; rated_records.completed_ms is the same instant). Old months can then be detached and
-- dropped whole (`latch retention apply`), after their export manifests exist.
--
-- PostgreSQL needs every unique index of a partitioned table to hold the partition key, so the
-- global keys move to two small unpartitioned tables, observation_keys (event_id) and
-- rated_record_keys (rated_record_id; (event_id, version)). A BEFORE INSERT row trigger writes
-- a row's key in the same statement (`INSERT … ON CONFLICT DO NOTHING`): a key already stored
-- skips the row, exactly as ON CONFLICT DO NOTHING did against the old unique indexes, and a
-- concurrent insert of the same key waits for the other transaction as it did. So an event id
-- re-sent with another completion month is still one event: the row is skipped and the hash
-- comparison reports the conflict. The same trigger refuses (SQLSTATE 22L10) a new row of a
-- month before the retention horizon, so a dropped month is never silently re-created.
--
-- Every table also has a DEFAULT partition: a row of a month without its own partition is
-- stored there, fully usable, until maintain_partitions (run here, by migrate(), and by
-- `latch retention apply`) creates the month's partitions and moves its rows into them.
--
-- Statements of older releases name the old unique indexes (`ON CONFLICT (event_id)`), which
-- no longer exist: no compatible-from line, so releases before 17 refuse this schema
-- (SchemaIncompatibleError) instead of failing writes. Cost: every observation and rated record
-- is copied once, under an ACCESS EXCLUSIVE lock of both tables for the whole migration (see
-- the README, "Partitions and retention"). Append-only: never edit.

-- The retention horizon: months before it were dropped (or detached) and take no new rows.
CREATE TABLE retention_horizon (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  before_month text COLLATE "C" NOT NULL CHECK (before_month ~ '^[0-9]{4}-[0-9]{2}$'),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- One row per month retention removed: what it held, and whether it was dropped or only detached.
CREATE TABLE retained_months (
  month         text COLLATE "C" PRIMARY KEY,
  action        text NOT NULL CHECK (action IN ('dropped', 'detached')),
  observations  bigint NOT NULL,
  rated_records bigint NOT NULL,
  last_seq      numeric,
  consumer      text COLLATE "C" NOT NULL,
  manifests     integer NOT NULL,
  applied_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE observation_keys (
  event_id text COLLATE "C" PRIMARY KEY,
  -- NULL only for a payload without timing.completedAt (raw SQL; such rows live in DEFAULT).
  month    text COLLATE "C"
);
CREATE INDEX observation_keys_month ON observation_keys (month);

CREATE TABLE rated_record_keys (
  rated_record_id text COLLATE "C" PRIMARY KEY,
  event_id        text COLLATE "C" NOT NULL,
  version         integer NOT NULL,
  month           text COLLATE "C" NOT NULL,
  UNIQUE (event_id, version)
);
CREATE INDEX rated_record_keys_month ON rated_record_keys (month);

-- 'YYYY-MM' of an epoch-ms instant, in UTC.
CREATE FUNCTION month_of_ms(ms bigint) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_char(to_timestamp(ms / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM');

-- The epoch ms of the first instant of a 'YYYY-MM' month (UTC), and of the month after it.
CREATE FUNCTION month_start_ms(month text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN (extract(epoch FROM make_timestamptz(left(month, 4)::int, right(month, 2)::int, 1, 0, 0, 0, 'UTC')) * 1000)::bigint;

CREATE FUNCTION next_month(month text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
RETURN to_char(make_date(left(month, 4)::int, right(month, 2)::int, 1) + interval '1 month', 'YYYY-MM');

-- The old tables keep their data until it is copied; their index and constraint names are freed.
ALTER TABLE observations RENAME TO observations_0015;
ALTER INDEX observations_pkey RENAME TO observations_0015_pkey;
ALTER INDEX observations_unpriced RENAME TO observations_0015_unpriced;
ALTER TABLE rated_records RENAME TO rated_records_0015;
ALTER INDEX rated_records_pkey RENAME TO rated_records_0015_pkey;
ALTER INDEX rated_records_rated_record_id_key RENAME TO rated_records_0015_rated_record_id_key;
ALTER INDEX rated_records_event_id_version_key RENAME TO rated_records_0015_event_id_version_key;
ALTER INDEX rated_records_log RENAME TO rated_records_0015_log;
ALTER INDEX rated_records_current_window RENAME TO rated_records_0015_current_window;
ALTER INDEX rated_records_current_tenant_window RENAME TO rated_records_0015_current_tenant_window;
DROP TRIGGER rated_records_current ON rated_records_0015;

CREATE TABLE observations (
  event_id   text COLLATE "C" NOT NULL,
  hash       text NOT NULL,
  payload    jsonb NOT NULL,
  priced     boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE ((payload #>> '{timing,completedAt}') COLLATE "C");
CREATE TABLE observations_default PARTITION OF observations DEFAULT;

-- Same columns in the same order as before (is_current last, as 0014 added it).
CREATE TABLE rated_records (
  id                 bigint NOT NULL DEFAULT nextval('rated_records_id_seq'),
  xid                xid8 NOT NULL DEFAULT pg_current_xact_id(),
  rated_record_id    text COLLATE "C" NOT NULL,
  event_id           text COLLATE "C" NOT NULL,
  version            integer NOT NULL,
  hash               text NOT NULL,
  payload            jsonb NOT NULL,
  currency           text COLLATE "C" NOT NULL,
  total              numeric NOT NULL,
  completed_ms       bigint NOT NULL,
  completed_text     text COLLATE "C" NOT NULL,
  completed_at       timestamptz NOT NULL,
  completed_day      text COLLATE "C" NOT NULL,
  provider           text COLLATE "C" NOT NULL,
  model              text COLLATE "C" NOT NULL,
  tenant_id          text COLLATE "C" NOT NULL,
  org_id             text COLLATE "C" NOT NULL,
  project_id         text COLLATE "C" NOT NULL,
  api_key_id         text COLLATE "C" NOT NULL,
  end_user_id        text COLLATE "C" NOT NULL,
  feature            text COLLATE "C" NOT NULL,
  success            boolean NOT NULL,
  input_tokens       bigint NOT NULL,
  output_tokens      bigint NOT NULL,
  cache_read_tokens  bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  total_tokens       bigint NOT NULL,
  is_current         boolean NOT NULL DEFAULT true
) PARTITION BY RANGE (completed_ms);
CREATE TABLE rated_records_default PARTITION OF rated_records DEFAULT;
ALTER SEQUENCE rated_records_id_seq OWNED BY rated_records.id;

-- Creates the partitions of one month of both tables (no-op when they exist). The caller holds
-- the partitions lock (maintain_partitions) and has moved the month's DEFAULT rows aside.
CREATE FUNCTION create_month_partitions(p_month text) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  suffix text := 'p' || replace(p_month, '-', '_');
BEGIN
  IF p_month !~ '^[0-9]{4}-[0-9]{2}$' THEN
    RAISE EXCEPTION 'month must be YYYY-MM, got %', p_month;
  END IF;
  IF to_regclass('rated_records_' || suffix) IS NOT NULL THEN
    RETURN false;
  END IF;
  -- 9999-12, the last month a timestamp may name, has no next 'YYYY-MM' ('10000-01' sorts
  -- before it as text): its partitions reach to MAXVALUE.
  EXECUTE format('CREATE TABLE %I PARTITION OF observations FOR VALUES FROM (%L) TO (%s)',
    'observations_' || suffix, p_month,
    CASE WHEN p_month = '9999-12' THEN 'MAXVALUE' ELSE quote_literal(next_month(p_month)) END);
  EXECUTE format('CREATE TABLE %I PARTITION OF rated_records FOR VALUES FROM (%s) TO (%s)',
    'rated_records_' || suffix, month_start_ms(p_month),
    CASE WHEN p_month = '9999-12' THEN 'MAXVALUE' ELSE month_start_ms(next_month(p_month))::text END);
  RETURN true;
END
$fn$;

-- The existing rows' months get their partitions before the copy (nothing lands in DEFAULT).
SELECT create_month_partitions(m)
FROM (
  SELECT left(payload #>> '{timing,completedAt}', 7) AS m FROM observations_0015
  UNION
  SELECT month_of_ms(completed_ms) FROM rated_records_0015
) months
WHERE m ~ '^[0-9]{4}-[0-9]{2}$'
ORDER BY m;

INSERT INTO observations (event_id, hash, payload, priced, created_at)
SELECT event_id, hash, payload, priced, created_at FROM observations_0015;
INSERT INTO observation_keys (event_id, month)
SELECT event_id, left(payload #>> '{timing,completedAt}', 7) FROM observations_0015;
INSERT INTO rated_records SELECT * FROM rated_records_0015;
INSERT INTO rated_record_keys (rated_record_id, event_id, version, month)
SELECT rated_record_id, event_id, version, month_of_ms(completed_ms) FROM rated_records_0015;
-- The sequence now belongs to the new table, so dropping the old one keeps it.
DROP TABLE observations_0015;
DROP TABLE rated_records_0015;

-- Lookups by id (each partition's index; ids are unique through the key tables).
CREATE INDEX observations_event ON observations (event_id);
CREATE INDEX observations_unpriced ON observations (event_id) WHERE NOT priced;
CREATE INDEX rated_records_log ON rated_records (xid, id);
CREATE INDEX rated_records_id ON rated_records (rated_record_id);
CREATE INDEX rated_records_event ON rated_records (event_id, version);
CREATE INDEX rated_records_current_window
  ON rated_records (completed_ms, completed_text, event_id) WHERE is_current;
CREATE INDEX rated_records_current_tenant_window
  ON rated_records (tenant_id, completed_ms) WHERE is_current;

-- Refuses a row of a month before the retention horizon (22L10, a data exception: the record
-- writer retries the other calls of its batch without it).
CREATE FUNCTION refuse_before_horizon(p_id text, p_month text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  horizon text;
BEGIN
  SELECT before_month INTO horizon FROM retention_horizon;
  IF horizon IS NOT NULL AND p_month < horizon THEN
    RAISE EXCEPTION USING ERRCODE = '22L10', MESSAGE = 'before_retention_horizon',
      DETAIL = json_build_object('id', p_id, 'month', p_month, 'horizon', horizon)::text;
  END IF;
END
$fn$;

-- The key of a new row, in the statement that inserts it; a stored key skips the row.
-- maintain_partitions sets latch.partition_move while it moves rows (their keys are stored).
CREATE FUNCTION observations_key() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  m text := left(NEW.payload #>> '{timing,completedAt}', 7);
BEGIN
  IF current_setting('latch.partition_move', true) = 'on' THEN
    RETURN NEW;
  END IF;
  IF m IS NOT NULL THEN
    PERFORM refuse_before_horizon(NEW.event_id, m);
  END IF;
  INSERT INTO observation_keys (event_id, month) VALUES (NEW.event_id, m)
  ON CONFLICT (event_id) DO NOTHING;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER observations_key BEFORE INSERT ON observations
FOR EACH ROW EXECUTE FUNCTION observations_key();

CREATE FUNCTION rated_records_key() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  m text := month_of_ms(NEW.completed_ms);
BEGIN
  IF current_setting('latch.partition_move', true) = 'on' THEN
    RETURN NEW;
  END IF;
  PERFORM refuse_before_horizon(NEW.rated_record_id, m);
  INSERT INTO rated_record_keys (rated_record_id, event_id, version, month)
  VALUES (NEW.rated_record_id, NEW.event_id, NEW.version, m)
  ON CONFLICT (rated_record_id) DO NOTHING;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER rated_records_key BEFORE INSERT ON rated_records
FOR EACH ROW EXECUTE FUNCTION rated_records_key();

-- 0014's current-version trigger, on the partitioned table (the function is unchanged: it
-- locks the version-1 rows through the parent, whatever partition holds them).
CREATE TRIGGER rated_records_current AFTER INSERT ON rated_records
REFERENCING NEW TABLE AS inserted_versions
FOR EACH STATEMENT EXECUTE FUNCTION rated_records_supersede();

-- Creates the partitions of every month from p_from to p_to, and of every month that has rows
-- in a DEFAULT partition, moving those rows in (ids, xids and flags kept, so change-log
-- positions do not move). Months before the retention horizon are skipped. Serialised by a
-- transaction-scoped advisory lock, so concurrent callers never fail; the parents are locked
-- (ACCESS EXCLUSIVE, as CREATE TABLE … PARTITION OF needs) only when a month is missing.
-- Returns the months it created.
CREATE FUNCTION maintain_partitions(p_from text, p_to text) RETURNS text[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  horizon text;
  m text;
  created text[] := '{}';
  wanted text[];
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('latch.partitions'), hashtext(current_schema()));
  SELECT before_month INTO horizon FROM retention_horizon;
  SELECT coalesce(array_agg(DISTINCT x ORDER BY x), '{}') INTO wanted FROM (
    SELECT to_char(g, 'YYYY-MM') AS x
    FROM generate_series(make_date(left(p_from, 4)::int, right(p_from, 2)::int, 1),
                         make_date(left(p_to, 4)::int, right(p_to, 2)::int, 1),
                         interval '1 month') AS g
    UNION
    SELECT left(payload #>> '{timing,completedAt}', 7) FROM observations_default
    UNION
    SELECT month_of_ms(completed_ms) FROM rated_records_default
  ) months
  -- Never past p_to: a month beyond the look-ahead stays in DEFAULT (usable) until the
  -- look-ahead reaches it, so events dated far ahead cannot make maintenance create thousands
  -- of partitions (slower planning and change-log reads for everyone).
  WHERE x ~ '^[0-9]{4}-[0-9]{2}$' AND (horizon IS NULL OR x >= horizon) AND x <= p_to
    AND to_regclass('rated_records_p' || replace(x, '-', '_')) IS NULL;
  IF cardinality(wanted) = 0 THEN
    RETURN created;
  END IF;
  LOCK TABLE observations, rated_records IN ACCESS EXCLUSIVE MODE;
  CREATE TEMP TABLE IF NOT EXISTS latch_move_observations (LIKE observations) ON COMMIT DROP;
  CREATE TEMP TABLE IF NOT EXISTS latch_move_rated_records (LIKE rated_records) ON COMMIT DROP;
  PERFORM set_config('latch.partition_move', 'on', true);
  FOREACH m IN ARRAY wanted LOOP
    WITH d AS (
      DELETE FROM observations_default
      WHERE left(payload #>> '{timing,completedAt}', 7) = m RETURNING *)
    INSERT INTO latch_move_observations SELECT * FROM d;
    WITH d AS (DELETE FROM rated_records_default WHERE month_of_ms(completed_ms) = m RETURNING *)
    INSERT INTO latch_move_rated_records SELECT * FROM d;
    PERFORM create_month_partitions(m);
    EXECUTE format('INSERT INTO %I SELECT * FROM latch_move_observations',
      'observations_p' || replace(m, '-', '_'));
    EXECUTE format('INSERT INTO %I SELECT * FROM latch_move_rated_records',
      'rated_records_p' || replace(m, '-', '_'));
    TRUNCATE latch_move_observations, latch_move_rated_records;
    created := created || m;
  END LOOP;
  PERFORM set_config('latch.partition_move', 'off', true);
  RETURN created;
END
$fn$;

-- Ids now resolve through the key tables' unique indexes (ON CONFLICT without a target: the
-- parents have no unique index). Otherwise as 0001/0008.
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
  SELECT o.event_id, o.hash AS existing, b.hash AS incoming INTO clash
  FROM jsonb_to_recordset(batch) AS b(event_id text, hash text)
  JOIN observations o ON o.event_id = b.event_id
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
      SELECT 1 FROM rated_record_keys p WHERE p.event_id = b.event_id AND p.version = b.version - 1)
  LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = 'LT422', MESSAGE = 'superseded_version_missing',
      DETAIL = json_build_object('id', clash.rated_record_id)::text;
  END IF;
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

-- Partitions for this month and the next three (and for any month already in DEFAULT).
SELECT maintain_partitions(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'),
  to_char((now() AT TIME ZONE 'UTC') + interval '3 months', 'YYYY-MM'));
