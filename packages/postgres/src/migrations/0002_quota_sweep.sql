-- Latch 0002: a global sweep of expired quota holds. Holds still expire lazily per account
-- (on reserve/commit/void of that account); this releases the expired holds of idle accounts.
-- Append-only: never edit.

-- Releases at most p_limit expired holds (by the database clock) across all accounts and
-- returns how many it released. Accounts are visited in code-point order and each is locked
-- (FOR UPDATE SKIP LOCKED) before its holds are touched, so locks are taken account → holds
-- as in quota_reserve/commit/void. An account whose row another transaction holds is skipped,
-- never waited on (that transaction expires the account's holds itself), so a sweep can
-- neither deadlock nor stall behind a busy account, and two sweeps never release one hold
-- twice. Each account's balance is updated in the same statement as its holds.
CREATE FUNCTION quota_sweep_expired(p_limit integer) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_account text;
  v_count bigint;
  v_freed bigint;
  released bigint := 0;
BEGIN
  FOR v_account IN
    SELECT a.account FROM quota_accounts a
    WHERE a.account IN (
      SELECT h.account FROM quota_holds h
      WHERE h.status = 'held' AND h.expires_at <= clock_timestamp())
    ORDER BY a.account
    FOR UPDATE OF a SKIP LOCKED
  LOOP
    EXIT WHEN released >= p_limit;
    -- A new statement (a fresh snapshot) after the lock: it sees every commit, void or
    -- expiry of this account that finished before the lock was granted.
    WITH due AS (
      SELECT hold_id FROM quota_holds
      WHERE account = v_account AND status = 'held' AND expires_at <= clock_timestamp()
      ORDER BY expires_at
      LIMIT p_limit - released
    ), e AS (
      UPDATE quota_holds h SET status = 'expired'
      FROM due WHERE h.hold_id = due.hold_id AND h.status = 'held'
      RETURNING h.amount
    )
    SELECT count(*), coalesce(sum(amount), 0) INTO v_count, v_freed FROM e;
    IF v_freed > 0 THEN
      UPDATE quota_accounts SET held = held - v_freed WHERE account = v_account;
    END IF;
    released := released + v_count;
  END LOOP;
  RETURN released;
END
$fn$;
