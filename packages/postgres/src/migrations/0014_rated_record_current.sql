-- Latch 0014: a current-version flag on rated records, so that summary and lines read
-- `WHERE is_current` through partial indexes instead of an anti-join against every newer
-- version (5.8 s for a month summary over 1.1 M records before this).
--
-- The flag is maintained by a statement-level trigger, in the transaction and statement of
-- the insert: whatever writes a version (put_rated_records of this or an older release, a
-- COPY), the versions it supersedes lose the flag before the statement ends. A new version is
-- always the event's highest (versions chain, and (event_id, version) is unique), so it is
-- inserted current. Existing rows are backfilled here. Releases from 13 on keep working:
-- their writes go through the same trigger and their reports (the anti-join) stay right; only
-- the window indexes they scanned are replaced by partial ones. Append-only: never edit.
-- compatible-from: 13

ALTER TABLE rated_records ADD COLUMN is_current boolean NOT NULL DEFAULT true;

UPDATE rated_records r SET is_current = false
WHERE EXISTS (SELECT 1 FROM rated_records n WHERE n.event_id = r.event_id AND n.version > r.version);

-- Clears the flag of every version that a version inserted by the statement supersedes. The
-- transition table holds only the rows the statement inserted (ON CONFLICT DO NOTHING skips
-- are not in it); version-1 rows supersede nothing, so a batch without corrections costs one
-- scan of its own rows.
--
-- Writers of one event's versions are serialised on its version-1 row first (locked in event
-- order, so two batches cannot deadlock here): without it, v3 put while v2's transaction is
-- still open waits on v1's row lock, skips v1 once v2's transaction commits (no longer
-- current), never sees v2 (not in its snapshot), then finds v2 stored in the chain check, and
-- commits with v2 and v3 both current. After the lock, the UPDATE (a new statement, so a new
-- snapshot under READ COMMITTED) sees every version committed before it.
CREATE FUNCTION rated_records_supersede() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM inserted_versions WHERE version > 1) THEN
    PERFORM 1 FROM rated_records r
    WHERE r.version = 1
      AND r.event_id IN (SELECT n.event_id FROM inserted_versions n WHERE n.version > 1)
    ORDER BY r.event_id
    FOR NO KEY UPDATE OF r;
    UPDATE rated_records p SET is_current = false
    FROM inserted_versions n
    WHERE n.version > 1 AND p.event_id = n.event_id AND p.version < n.version AND p.is_current;
  END IF;
  RETURN NULL;
END
$fn$;

CREATE TRIGGER rated_records_current AFTER INSERT ON rated_records
REFERENCING NEW TABLE AS inserted_versions
FOR EACH STATEMENT EXECUTE FUNCTION rated_records_supersede();

-- summary / lines over current versions: the window on completedAt, then the lines order;
-- and one tenant's window. The full-table window indexes of 0001 go: no query of this release
-- reads them, and every insert paid for them.
CREATE INDEX rated_records_current_window
  ON rated_records (completed_ms, completed_text, event_id) WHERE is_current;
CREATE INDEX rated_records_current_tenant_window
  ON rated_records (tenant_id, completed_ms) WHERE is_current;
DROP INDEX rated_records_window;
DROP INDEX rated_records_tenant_window;
