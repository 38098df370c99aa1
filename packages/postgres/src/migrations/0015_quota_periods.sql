-- Latch 0015: budget periods of quota accounts. A calendar period (day, week from Monday,
-- month, at local midnight of an IANA time zone, by this database's time-zone data) starts
-- `spent` at 0 at each boundary; a rolling window counts only the commits of its last
-- rolling_ms. Periods roll lazily, by the database clock (`clock_timestamp()`), under the
-- account's row lock, in quota_expire, which every reserve, commit and void already calls
-- first. Holds are untouched by a roll: an open hold keeps counting in `held`, and a commit
-- charges the period it is committed in. Accounts without a period behave as before.
-- Only adds nullable columns (no table rewrite), a table and functions, and replaces
-- quota_expire and quota_commit with the same signatures. Append-only: never edit.
-- compatible-from: 13

ALTER TABLE quota_accounts
  ADD COLUMN period_every text CHECK (period_every IN ('day', 'week', 'month')),
  ADD COLUMN period_zone text,
  ADD COLUMN period_rolling_ms bigint CHECK (period_rolling_ms > 0),
  -- A calendar period's current bounds: spent restarts at 0 from period_end on.
  ADD COLUMN period_start timestamptz,
  ADD COLUMN period_end timestamptz;

-- A rolling window's commits (their sum is the account's spent). Rows the window has passed
-- are deleted by the account's next reserve, commit, void or setLimit.
CREATE TABLE quota_window_usage (
  id      bigserial PRIMARY KEY,
  account text COLLATE "C" NOT NULL,
  at      timestamptz NOT NULL,
  amount  bigint NOT NULL CHECK (amount > 0)
);
CREATE INDEX quota_window_usage_account ON quota_window_usage (account, at);

-- The first instant of local time p_local in p_zone. A local time that the zone skips is read
-- with the offset before the change, which is the instant the day begins; one that occurs
-- twice (a fall-back at midnight: America/Havana, Atlantic/Azores) is its first occurrence,
-- as core's Intl arithmetic has it (Postgres alone reads it with the offset after the change).
CREATE FUNCTION quota_local_start(p_local timestamp, p_zone text) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $fn$
DECLARE
  later timestamptz := p_local AT TIME ZONE p_zone;
  day_before timestamptz := later - interval '1 day';
  earlier timestamptz := (p_local - ((day_before AT TIME ZONE p_zone) - (day_before AT TIME ZONE 'UTC')))
    AT TIME ZONE 'UTC';
BEGIN
  IF earlier < later AND (earlier AT TIME ZONE p_zone) = p_local THEN
    RETURN earlier;
  END IF;
  RETURN later;
END
$fn$;

-- The calendar period containing p_at: local midnight of its first day to local midnight
-- after its last, in p_zone (see quota_local_start).
CREATE FUNCTION quota_period_bounds(p_every text, p_zone text, p_at timestamptz,
  OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $fn$
DECLARE
  local_start timestamp := date_trunc(p_every, p_at AT TIME ZONE p_zone);
BEGIN
  period_start := quota_local_start(local_start, p_zone);
  period_end := quota_local_start(local_start + CASE p_every
    WHEN 'day' THEN interval '1 day' WHEN 'week' THEN interval '7 days' ELSE interval '1 month' END,
    p_zone);
END
$fn$;

-- Rolls an account's period to now (the caller holds the account's row lock).
CREATE FUNCTION quota_roll(p_account text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  a record;
  b record;
  passed bigint;
BEGIN
  SELECT period_every, period_zone, period_rolling_ms, period_end INTO a
  FROM quota_accounts WHERE account = p_account;
  IF a.period_every IS NOT NULL AND clock_timestamp() >= a.period_end THEN
    SELECT * INTO b FROM quota_period_bounds(a.period_every, a.period_zone, clock_timestamp());
    UPDATE quota_accounts SET spent = 0, period_start = b.period_start, period_end = b.period_end
    WHERE account = p_account;
  ELSIF a.period_rolling_ms IS NOT NULL THEN
    WITH d AS (
      DELETE FROM quota_window_usage
      WHERE account = p_account AND at <= clock_timestamp() - a.period_rolling_ms * interval '1 millisecond'
      RETURNING amount
    )
    SELECT coalesce(sum(amount), 0) INTO passed FROM d;
    IF passed > 0 THEN
      UPDATE quota_accounts SET spent = greatest(0, spent - passed) WHERE account = p_account;
    END IF;
  END IF;
END
$fn$;

-- 0001's quota_expire, after rolling the account's period.
CREATE OR REPLACE FUNCTION quota_expire(p_account text) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  freed bigint;
BEGIN
  PERFORM quota_roll(p_account);
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

-- Sets the limit and, unless p_mode is 'keep', the period ('none' removes it, 'set' sets
-- p_every + p_zone or p_rolling_ms). A changed period keeps spent until its first reset; a
-- rolling window counts it as committed now.
CREATE FUNCTION quota_set_limit(p_account text, p_limit bigint, p_mode text, p_every text,
  p_zone text, p_rolling_ms bigint) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  a record;
  b record;
BEGIN
  INSERT INTO quota_accounts (account, limit_units) VALUES (p_account, p_limit)
  ON CONFLICT (account) DO UPDATE SET limit_units = EXCLUDED.limit_units;
  IF p_mode = 'keep' THEN
    RETURN;
  END IF;
  SELECT * INTO a FROM quota_accounts WHERE account = p_account FOR UPDATE;
  PERFORM quota_roll(p_account);
  IF p_mode = 'set' AND a.period_every IS NOT DISTINCT FROM p_every
    AND a.period_zone IS NOT DISTINCT FROM p_zone
    AND a.period_rolling_ms IS NOT DISTINCT FROM p_rolling_ms THEN
    RETURN; -- the same period: nothing changes
  END IF;
  IF p_mode = 'none' AND a.period_every IS NULL AND a.period_rolling_ms IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM quota_window_usage WHERE account = p_account;
  IF p_mode = 'none' THEN
    UPDATE quota_accounts SET period_every = NULL, period_zone = NULL, period_rolling_ms = NULL,
      period_start = NULL, period_end = NULL
    WHERE account = p_account;
  ELSIF p_every IS NOT NULL THEN
    SELECT * INTO b FROM quota_period_bounds(p_every, p_zone, clock_timestamp());
    UPDATE quota_accounts SET period_every = p_every, period_zone = p_zone, period_rolling_ms = NULL,
      period_start = b.period_start, period_end = b.period_end
    WHERE account = p_account;
  ELSE
    UPDATE quota_accounts SET period_every = NULL, period_zone = NULL, period_rolling_ms = p_rolling_ms,
      period_start = NULL, period_end = NULL
    WHERE account = p_account
    RETURNING spent INTO a;
    INSERT INTO quota_window_usage (account, at, amount)
    SELECT p_account, clock_timestamp(), a.spent WHERE a.spent > 0;
  END IF;
END
$fn$;

-- 0010's quota_commit; a commit on a rolling window is also recorded with its time.
CREATE OR REPLACE FUNCTION quota_commit(p_hold text, p_actual bigint, OUT status text, OUT committed bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_account text;
  v_rolling bigint;
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
  IF NOT FOUND THEN
    status := 'unknown';
    RETURN;
  END IF;
  IF h.status = 'committed' THEN
    committed := h.committed;
    status := CASE WHEN h.committed = p_actual THEN 'committed' ELSE 'conflict' END;
    RETURN;
  END IF;
  IF h.status = 'voided' THEN
    status := 'voided';
    RETURN;
  END IF;
  -- held or expired: the call happened, so charge the actual amount in full, to this period.
  UPDATE quota_accounts
  SET spent = spent + p_actual,
      held = held - CASE WHEN h.status = 'held' THEN h.amount ELSE 0 END
  WHERE account = v_account AND spent + p_actual <= 9007199254740991
  RETURNING period_rolling_ms INTO v_rolling;
  IF NOT FOUND THEN
    status := 'overflow';
    RETURN;
  END IF;
  IF v_rolling IS NOT NULL AND p_actual > 0 THEN
    INSERT INTO quota_window_usage (account, at, amount) VALUES (v_account, clock_timestamp(), p_actual);
  END IF;
  UPDATE quota_holds SET status = 'committed', committed = p_actual WHERE hold_id = p_hold;
  status := 'committed';
  committed := p_actual;
END
$fn$;
