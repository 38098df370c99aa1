-- Latch 0016: bounded rolling windows. 0015 kept one quota_window_usage row per commit, so an
-- account's rows grew with its traffic (a million commits in a window, a million rows). Now a
-- window keeps one row per bucket of ceil(rolling_ms / 100) ms aligned on the epoch (core's
-- quotaRollingBucketMs): a commit adds its amount to the row of its bucket, whose `at` is the
-- bucket's last millisecond (quotaRollingEntryAt), so an account keeps at most 101 rows and a
-- commit leaves the window when its whole bucket has (at <= now - rolling_ms: 0015's rule,
-- unchanged, so rows 0015 wrote are read and trimmed the same way and nothing is converted).
-- quota_roll deletes at most 1,000 passed rows per call (the account's next call deletes the
-- rest; only 0015's per-commit rows can be that many), with the cutoff read once.
-- Only replaces functions, with the same signatures: a release at 13, 14 or 15 keeps working
-- (its reserve, commit, void and setLimit run these functions; release 15's balance reads the
-- same rows with the same rule). Append-only: never edit.
-- compatible-from: 13

-- The instant a commit at p_at is recorded at in a rolling window of p_rolling_ms: the last
-- millisecond of its bucket (core's quotaRollingEntryAt).
CREATE FUNCTION quota_window_entry_at(p_rolling_ms bigint, p_at timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $fn$
DECLARE
  width bigint := (p_rolling_ms + 99) / 100;
  at_ms bigint := floor(extract(epoch FROM p_at) * 1000)::bigint;
  entry_ms bigint := floor(at_ms::numeric / width)::bigint * width + width - 1;
BEGIN
  RETURN timestamptz '1970-01-01 00:00:00+00' + (entry_ms / 1000) * interval '1 second'
    + (entry_ms % 1000) * interval '1 millisecond';
END
$fn$;

-- Adds p_amount to the bucket of now in the account's rolling window (the caller holds the
-- account's row lock, so no other call adds a row for the same bucket meanwhile).
CREATE FUNCTION quota_window_record(p_account text, p_rolling_ms bigint, p_amount bigint) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_at timestamptz := quota_window_entry_at(p_rolling_ms, clock_timestamp());
BEGIN
  UPDATE quota_window_usage SET amount = amount + p_amount
  WHERE id = (SELECT id FROM quota_window_usage WHERE account = p_account AND at = v_at ORDER BY id DESC LIMIT 1);
  IF NOT FOUND THEN
    INSERT INTO quota_window_usage (account, at, amount) VALUES (p_account, v_at, p_amount);
  END IF;
END
$fn$;

-- 0015's quota_roll; a rolling window deletes at most 1,000 passed rows per call.
CREATE OR REPLACE FUNCTION quota_roll(p_account text) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  a record;
  b record;
  passed bigint;
  cutoff timestamptz;
BEGIN
  SELECT period_every, period_zone, period_rolling_ms, period_end INTO a
  FROM quota_accounts WHERE account = p_account;
  IF a.period_every IS NOT NULL AND clock_timestamp() >= a.period_end THEN
    SELECT * INTO b FROM quota_period_bounds(a.period_every, a.period_zone, clock_timestamp());
    UPDATE quota_accounts SET spent = 0, period_start = b.period_start, period_end = b.period_end
    WHERE account = p_account;
  ELSIF a.period_rolling_ms IS NOT NULL THEN
    cutoff := clock_timestamp() - a.period_rolling_ms * interval '1 millisecond';
    WITH d AS (
      DELETE FROM quota_window_usage
      WHERE id IN (
        SELECT id FROM quota_window_usage
        WHERE account = p_account AND at <= cutoff
        ORDER BY at
        LIMIT 1000)
      RETURNING amount
    )
    SELECT coalesce(sum(amount), 0) INTO passed FROM d;
    IF passed > 0 THEN
      UPDATE quota_accounts SET spent = greatest(0, spent - passed) WHERE account = p_account;
    END IF;
  END IF;
END
$fn$;

-- 0015's quota_set_limit; the spend a new rolling window starts with is recorded in now's bucket.
CREATE OR REPLACE FUNCTION quota_set_limit(p_account text, p_limit bigint, p_mode text, p_every text,
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
    IF a.spent > 0 THEN
      PERFORM quota_window_record(p_account, p_rolling_ms, a.spent);
    END IF;
  END IF;
END
$fn$;

-- 0015's quota_commit; a commit on a rolling window is added to its bucket.
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
    PERFORM quota_window_record(v_account, v_rolling, p_actual);
  END IF;
  UPDATE quota_holds SET status = 'committed', committed = p_actual WHERE hold_id = p_hold;
  status := 'committed';
  committed := p_actual;
END
$fn$;
