-- Latch 0012: API key lineage. `created_by` is the key that minted a key (`ApiKeys.mint`, e.g.
-- `POST /api/billing/keys`), NULL for a key issued in code. Revocation follows it, enforced
-- here rather than by the store's statements, so a release that predates this migration (a
-- rolling deploy) cascades too:
-- - revoking a key (revoked_at from NULL to a time) revokes every live key it minted,
--   transitively, at the same time, in one statement (a recursive walk, not one trigger level
--   per generation, so a long chain cannot exhaust the stack). Keys already revoked keep their
--   own time (their minted keys were revoked with them). Each key revoked by the walk fires
--   the trigger again, in a new statement: it finds nothing left, except a key whose insert
--   was waited for (see below), which it revokes.
-- - a key inserted with a revoked minter is stored revoked at its minter's time. The insert
--   takes FOR SHARE on the minter's row: a concurrent revoke either committed first (its time
--   is read here) or waits for this insert and then, in a new statement, sees the new key.
-- `created_by` is a column, not part of `payload`, so older releases still parse every row.
-- Only adds a nullable column (no table rewrite), an index, functions and triggers.
-- Append-only: never edit.
-- compatible-from: 6

ALTER TABLE api_keys ADD COLUMN created_by text COLLATE "C";
-- The keys a key minted. On a table with millions of keys, build it first with CREATE INDEX
-- CONCURRENTLY under the same name and definition (IF NOT EXISTS then skips it).
CREATE INDEX IF NOT EXISTS api_keys_created_by ON api_keys (created_by) WHERE created_by IS NOT NULL;

CREATE FUNCTION api_keys_inherit_revocation() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  minter_revoked_at timestamptz;
BEGIN
  SELECT revoked_at INTO minter_revoked_at FROM api_keys WHERE id = NEW.created_by FOR SHARE;
  IF minter_revoked_at IS NOT NULL AND NEW.revoked_at IS NULL THEN
    NEW.revoked_at := minter_revoked_at;
  END IF;
  RETURN NEW;
END
$fn$;
CREATE TRIGGER api_keys_minted_by_revoked BEFORE INSERT ON api_keys
FOR EACH ROW WHEN (NEW.created_by IS NOT NULL)
EXECUTE FUNCTION api_keys_inherit_revocation();

CREATE FUNCTION api_keys_revoke_minted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  -- Through live keys only: a revoked key's minted keys were revoked with it.
  WITH RECURSIVE minted(id) AS (
    SELECT k.id FROM api_keys k WHERE k.created_by = NEW.id AND k.revoked_at IS NULL
    UNION
    SELECT k.id FROM api_keys k JOIN minted m ON k.created_by = m.id WHERE k.revoked_at IS NULL
  )
  UPDATE api_keys SET revoked_at = NEW.revoked_at
  WHERE id IN (SELECT id FROM minted) AND revoked_at IS NULL;
  RETURN NULL;
END
$fn$;
CREATE TRIGGER api_keys_revoked AFTER UPDATE OF revoked_at ON api_keys
FOR EACH ROW WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
EXECUTE FUNCTION api_keys_revoke_minted();
