-- Latch 0011: a reserve retried after its hold expired unresolved holds it again. Before, the
-- retry answered "granted" while nothing was held any more, so the call it guarded ran outside
-- the limit. Now, as on Redis and in memory, the expired hold is counted again (a fresh ttlMs)
-- when the account has room, else the retry is denied like a new reserve. Committed and voided
-- holds are still answered as the first reserve was. Only replaces quota_reserve (same
-- signature and results). Append-only: never edit.
-- compatible-from: 6

CREATE OR REPLACE FUNCTION quota_reserve(p_hold text, p_account text, p_amount bigint, p_ttl_ms bigint,
  OUT status text, OUT remaining bigint, OUT existing_account text, OUT existing_amount bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  h record;
BEGIN
  PERFORM 1 FROM quota_accounts WHERE account = p_account FOR UPDATE;
  IF FOUND THEN
    PERFORM quota_expire(p_account);
  END IF;
  -- FOR UPDATE: a purge deleting this (resolved) hold right now is waited for, and the hold is
  -- then not found (a new hold) instead of being held again after its row is gone.
  SELECT account, amount, quota_holds.status AS state INTO h FROM quota_holds WHERE hold_id = p_hold FOR UPDATE;
  IF FOUND THEN
    existing_account := h.account;
    existing_amount := h.amount;
    IF h.account <> p_account OR h.amount <> p_amount THEN
      status := 'conflict';
    ELSIF h.state = 'expired' THEN
      UPDATE quota_accounts SET held = held + p_amount
      WHERE account = p_account AND limit_units - spent - held >= p_amount;
      IF FOUND THEN
        UPDATE quota_holds
        SET status = 'held', expires_at = clock_timestamp() + p_ttl_ms * interval '1 millisecond'
        WHERE hold_id = p_hold;
        status := 'granted';
      ELSE
        status := 'denied';
      END IF;
    ELSE
      status := 'retry';
    END IF;
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
