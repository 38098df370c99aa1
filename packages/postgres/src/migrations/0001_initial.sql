-- Latch 0001: observations, rated records (change log + reports), consumer cursors,
-- two-phase quota and usage counters. Runs with search_path set to the target schema;
-- objects are unqualified so one file serves any schema name. Append-only: never edit.

CREATE TABLE observations (
  event_id   text COLLATE "C" PRIMARY KEY,
  hash       text NOT NULL,
  payload    jsonb NOT NULL,
  priced     boolean NOT NULL DEFAULT false,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- listUnpriced: unpriced ids in code-point order.
CREATE INDEX observations_unpriced ON observations (event_id) WHERE NOT priced;

CREATE TABLE rated_records (
  id                bigserial PRIMARY KEY,
  -- The writing transaction: the change log hands a row out only once every transaction
  -- that could still commit an earlier position has ended (see README, "Export cursor").
  xid               xid8 NOT NULL DEFAULT pg_current_xact_id(),
  rated_record_id   text COLLATE "C" NOT NULL UNIQUE,
  event_id          text COLLATE "C" NOT NULL,
  version           integer NOT NULL,
  hash              text NOT NULL,
  payload           jsonb NOT NULL,
  currency          text COLLATE "C" NOT NULL,
  total             numeric NOT NULL,
  completed_ms      bigint NOT NULL,
  completed_text    text COLLATE "C" NOT NULL,
  completed_at      timestamptz NOT NULL,
  completed_day     text COLLATE "C" NOT NULL,
  provider          text COLLATE "C" NOT NULL,
  model             text COLLATE "C" NOT NULL,
  tenant_id         text COLLATE "C" NOT NULL,
  org_id            text COLLATE "C" NOT NULL,
  project_id        text COLLATE "C" NOT NULL,
  api_key_id        text COLLATE "C" NOT NULL,
  end_user_id       text COLLATE "C" NOT NULL,
  feature           text COLLATE "C" NOT NULL,
  success           boolean NOT NULL,
  input_tokens      bigint NOT NULL,
  output_tokens     bigint NOT NULL,
  cache_read_tokens bigint NOT NULL,
  cache_write_tokens bigint NOT NULL,
  total_tokens      bigint NOT NULL,
  UNIQUE (event_id, version)
);
-- listSince: (xid, id) order.
CREATE INDEX rated_records_log ON rated_records (xid, id);
-- summary / lines: the window on completedAt, then the lines order.
CREATE INDEX rated_records_window ON rated_records (completed_ms, completed_text, event_id);
CREATE INDEX rated_records_tenant_window ON rated_records (tenant_id, completed_ms);

CREATE TABLE consumer_cursors (
  name       text COLLATE "C" PRIMARY KEY,
  position   numeric NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE quota_accounts (
  account     text COLLATE "C" PRIMARY KEY,
  limit_units bigint NOT NULL CHECK (limit_units >= 0),
  spent       bigint NOT NULL DEFAULT 0 CHECK (spent >= 0),
  held        bigint NOT NULL DEFAULT 0 CHECK (held >= 0)
);

CREATE TABLE quota_holds (
  hold_id    text COLLATE "C" PRIMARY KEY,
  account    text COLLATE "C" NOT NULL,
  amount     bigint NOT NULL CHECK (amount > 0),
  status     text NOT NULL CHECK (status IN ('held', 'committed', 'voided', 'expired')),
  expires_at timestamptz NOT NULL,
  committed  bigint,
  created_at timestamptz NOT NULL DEFAULT now()
);
-- The expiry sweep of one account.
CREATE INDEX quota_holds_active ON quota_holds (account, expires_at) WHERE status = 'held';

CREATE TABLE usage_counters (
  key    text COLLATE "C" NOT NULL,
  period text COLLATE "C" NOT NULL,
  total  bigint NOT NULL CHECK (total >= 0),
  PRIMARY KEY (key, period)
);

-- Idempotent batch append: inserts the new ids, then fails the whole statement (nothing
-- written) when any id is stored with another hash. Ids are unique within a batch (the
-- client dedupes first). Returns the ids it inserted.
CREATE FUNCTION append_observations(batch jsonb) RETURNS text[]
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  inserted text[];
  clash record;
BEGIN
  WITH ins AS (
    INSERT INTO observations (event_id, hash, payload)
    SELECT b.event_id, b.hash, b.payload
    FROM jsonb_to_recordset(batch) AS b(event_id text, hash text, payload jsonb)
    ON CONFLICT (event_id) DO NOTHING
    RETURNING observations.event_id
  )
  SELECT coalesce(array_agg(ins.event_id), '{}') INTO inserted FROM ins;
  IF cardinality(inserted) = jsonb_array_length(batch) THEN
    RETURN inserted; -- every id was new: nothing to compare
  END IF;
  -- A new statement, so a new snapshot: it sees rows that concurrent writers committed
  -- while the insert above waited on them.
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

-- Idempotent batch put of rated-record versions; like append_observations, plus: every
-- inserted version > 1 must find the version it supersedes stored (or earlier in the batch).
CREATE FUNCTION put_rated_records(batch jsonb) RETURNS text[]
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
  RETURN inserted;
END
$fn$;

-- Releases the expired holds of one account (the caller holds the account's row lock).
CREATE FUNCTION quota_expire(p_account text) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  freed bigint;
BEGIN
  WITH e AS (
    UPDATE quota_holds SET status = 'expired'
    WHERE account = p_account AND status = 'held' AND expires_at <= clock_timestamp()
    RETURNING amount
  )
  SELECT coalesce(sum(amount), 0) INTO freed FROM e;
  IF freed > 0 THEN
    UPDATE quota_accounts SET held = held - freed WHERE account = p_account;
  END IF;
  RETURN freed;
END
$fn$;

-- Two-phase quota. Every function locks the account row first, so operations on one
-- account are serialised and locks are always taken account → holds (no deadlocks).
-- The grant itself is one conditional UPDATE: limit − spent − held ≥ amount.
-- Result status: granted | retry | denied | conflict (existing account/amount returned).
CREATE FUNCTION quota_reserve(p_hold text, p_account text, p_amount bigint, p_ttl_ms bigint,
  OUT status text, OUT remaining bigint, OUT existing_account text, OUT existing_amount bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  h record;
BEGIN
  PERFORM 1 FROM quota_accounts WHERE account = p_account FOR UPDATE;
  IF FOUND THEN
    PERFORM quota_expire(p_account);
  END IF;
  SELECT account, amount INTO h FROM quota_holds WHERE hold_id = p_hold;
  IF FOUND THEN
    existing_account := h.account;
    existing_amount := h.amount;
    status := CASE WHEN h.account = p_account AND h.amount = p_amount THEN 'retry' ELSE 'conflict' END;
    SELECT greatest(0, limit_units - spent - held) INTO remaining FROM quota_accounts WHERE account = p_account;
    remaining := coalesce(remaining, 0);
    RETURN;
  END IF;
  UPDATE quota_accounts SET held = held + p_amount
  WHERE account = p_account AND limit_units - spent - held >= p_amount
  RETURNING greatest(0, limit_units - spent - held) INTO remaining;
  IF NOT FOUND THEN
    status := 'denied';
    SELECT greatest(0, limit_units - spent - held) INTO remaining FROM quota_accounts WHERE account = p_account;
    remaining := coalesce(remaining, 0);
    RETURN;
  END IF;
  INSERT INTO quota_holds (hold_id, account, amount, status, expires_at)
  VALUES (p_hold, p_account, p_amount, 'held', clock_timestamp() + p_ttl_ms * interval '1 millisecond')
  ON CONFLICT (hold_id) DO NOTHING;
  IF NOT FOUND THEN
    -- A concurrent reserve of the same holdId (on another account) won: undo our grant.
    UPDATE quota_accounts SET held = held - p_amount WHERE account = p_account
    RETURNING greatest(0, limit_units - spent - held) INTO remaining;
    SELECT account, amount INTO h FROM quota_holds WHERE hold_id = p_hold;
    existing_account := h.account;
    existing_amount := h.amount;
    status := CASE WHEN h.account = p_account AND h.amount = p_amount THEN 'retry' ELSE 'conflict' END;
    RETURN;
  END IF;
  status := 'granted';
END
$fn$;

-- Result status: committed (committed = the charged amount) | unknown | voided | conflict | overflow.
CREATE FUNCTION quota_commit(p_hold text, p_actual bigint, OUT status text, OUT committed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_account text;
  h record;
BEGIN
  SELECT account INTO v_account FROM quota_holds WHERE hold_id = p_hold;
  IF NOT FOUND THEN
    status := 'unknown';
    RETURN;
  END IF;
  PERFORM 1 FROM quota_accounts WHERE account = v_account FOR UPDATE;
  PERFORM quota_expire(v_account);
  SELECT * INTO h FROM quota_holds WHERE hold_id = p_hold FOR UPDATE;
  IF h.status = 'committed' THEN
    committed := h.committed;
    status := CASE WHEN h.committed = p_actual THEN 'committed' ELSE 'conflict' END;
    RETURN;
  END IF;
  IF h.status = 'voided' THEN
    status := 'voided';
    RETURN;
  END IF;
  -- held or expired: the call happened, so charge the actual amount in full.
  UPDATE quota_accounts
  SET spent = spent + p_actual,
      held = held - CASE WHEN h.status = 'held' THEN h.amount ELSE 0 END
  WHERE account = v_account AND spent + p_actual <= 9007199254740991;
  IF NOT FOUND THEN
    status := 'overflow';
    RETURN;
  END IF;
  UPDATE quota_holds SET status = 'committed', committed = p_actual WHERE hold_id = p_hold;
  status := 'committed';
  committed := p_actual;
END
$fn$;

-- Result: unknown | committed | done.
CREATE FUNCTION quota_void(p_hold text) RETURNS text
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_account text;
  h record;
BEGIN
  SELECT account INTO v_account FROM quota_holds WHERE hold_id = p_hold;
  IF NOT FOUND THEN
    RETURN 'unknown';
  END IF;
  PERFORM 1 FROM quota_accounts WHERE account = v_account FOR UPDATE;
  PERFORM quota_expire(v_account);
  SELECT * INTO h FROM quota_holds WHERE hold_id = p_hold FOR UPDATE;
  IF h.status = 'committed' THEN
    RETURN 'committed';
  END IF;
  IF h.status = 'held' THEN
    UPDATE quota_accounts SET held = held - h.amount WHERE account = v_account;
    UPDATE quota_holds SET status = 'voided' WHERE hold_id = p_hold;
  END IF;
  RETURN 'done';
END
$fn$;
