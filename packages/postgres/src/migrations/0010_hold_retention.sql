-- Latch 0010: retention of resolved holds. A quota or credit hold that was committed, voided or
-- has expired is kept only so that a retried commit, void or reserve stays idempotent; after
-- a retention the caller chooses it is deleted, in bounded batches, by quota_purge_resolved
-- and credit_purge_resolved_holds. A commit or void of a purged hold finds no hold and answers
-- `unknown` (invalid_input naming holdId): it fails loudly, it never charges again.
-- Only adds columns (nullable, no default: no table rewrite), triggers, indexes and functions,
-- and replaces quota_commit / quota_void with versions that also answer `unknown` for a hold
-- deleted while they waited for its account's lock. Append-only: never edit.
-- compatible-from: 6

-- When a hold last changed status (held → committed / voided / expired, expired → committed),
-- set by a trigger so that every path that resolves a hold (the quota functions, the sweep,
-- the credit ledger's statements) records it. NULL for holds resolved before this migration:
-- the purge then counts from their expiry.
ALTER TABLE quota_holds ADD COLUMN resolved_at timestamptz;
ALTER TABLE credit_holds ADD COLUMN resolved_ms bigint;

CREATE FUNCTION quota_hold_resolved() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.resolved_at := clock_timestamp();
  RETURN NEW;
END
$fn$;
CREATE TRIGGER quota_holds_resolved BEFORE UPDATE OF status ON quota_holds
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION quota_hold_resolved();

CREATE FUNCTION credit_hold_resolved() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
  NEW.resolved_ms := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER credit_holds_resolved BEFORE UPDATE OF status ON credit_holds
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION credit_hold_resolved();

-- The purge order: resolved holds by resolution time. On a large existing table, build these
-- beforehand with CREATE INDEX CONCURRENTLY under the same names (IF NOT EXISTS skips them).
CREATE INDEX IF NOT EXISTS quota_holds_resolved
  ON quota_holds ((coalesce(resolved_at, expires_at))) WHERE status <> 'held';
-- A credit hold left 'held' is expired from expires_ms on (derived, never swept): that is
-- when it resolved.
CREATE INDEX IF NOT EXISTS credit_holds_purge
  ON credit_holds ((CASE WHEN status = 'held' THEN expires_ms ELSE coalesce(resolved_ms, expires_ms) END));

-- Deletes at most p_limit quota holds resolved (committed, voided, expired) at least
-- p_retention_ms ago by the database clock, oldest first, and returns how many. A resolved
-- hold no longer counts in its account's `held`, so no account row changes or is locked; a
-- hold that a commit or void holds locked right now is skipped (SKIP LOCKED), not waited on.
-- A hold still 'held' past its expiry is marked expired first (by the account's next
-- operation or quota_sweep_expired) and purged a retention after that.
CREATE FUNCTION quota_purge_resolved(p_retention_ms bigint, p_limit integer) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  purged bigint;
BEGIN
  WITH due AS (
    SELECT hold_id FROM quota_holds
    WHERE status <> 'held'
      AND coalesce(resolved_at, expires_at) <= clock_timestamp() - p_retention_ms * interval '1 millisecond'
    ORDER BY coalesce(resolved_at, expires_at)
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), d AS (
    DELETE FROM quota_holds h USING due WHERE h.hold_id = due.hold_id RETURNING 1
  )
  SELECT count(*) INTO purged FROM d;
  RETURN purged;
END
$fn$;

-- The same for credit holds: committed or voided at least p_retention_ms ago, or left 'held'
-- and expired at least that long ago (holds are not usage: balances never read them).
CREATE FUNCTION credit_purge_resolved_holds(p_retention_ms bigint, p_limit integer) RETURNS bigint
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  cutoff bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - p_retention_ms;
  purged bigint;
BEGIN
  WITH due AS (
    SELECT hold_id FROM credit_holds
    WHERE (CASE WHEN status = 'held' THEN expires_ms ELSE coalesce(resolved_ms, expires_ms) END) <= cutoff
    ORDER BY (CASE WHEN status = 'held' THEN expires_ms ELSE coalesce(resolved_ms, expires_ms) END)
    LIMIT p_limit
    FOR UPDATE SKIP LOCKED
  ), d AS (
    DELETE FROM credit_holds h USING due WHERE h.hold_id = due.hold_id RETURNING 1
  )
  SELECT count(*) INTO purged FROM d;
  RETURN purged;
END
$fn$;

-- 0001's quota_commit and quota_void, plus one check: the hold read again under its account's
-- lock may have been purged meanwhile; then it is `unknown`, never charged or released.
CREATE OR REPLACE FUNCTION quota_commit(p_hold text, p_actual bigint, OUT status text, OUT committed bigint)
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

CREATE OR REPLACE FUNCTION quota_void(p_hold text) RETURNS text
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
  IF NOT FOUND THEN
    RETURN 'unknown';
  END IF;
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
