-- Latch 0013: balance snapshots of credit ledgers (see @latch/core `credits/snapshots.ts`). A
-- snapshot at `position_ms` is the credit engine's replay state after every event dated before
-- it; a write replays only the usage from the latest valid snapshot on, found through the new
-- (ledger_id, at_ms) index. Snapshots are taken and dropped under the ledger's row lock: a
-- write drops every snapshot after the earliest time it changes (late usage, a correction, a
-- grant, a void, a reset) before it replays. Releases before this one write usage without
-- dropping snapshots, so they must not run against a migrated schema (no compatible-from).
-- Append-only: never edit.

CREATE TABLE credit_snapshots (
  ledger_id   text COLLATE "C" NOT NULL REFERENCES credit_ledgers (ledger_id),
  -- Covers every event with a time (epoch ms) before it.
  position_ms bigint NOT NULL,
  -- The engine state: grant accounts, feature usage and refundable allocations, reset count.
  state       jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ledger_id, position_ms)
);

-- The usage after a snapshot. IF NOT EXISTS: on a large credit_usage, build it first with
-- CREATE INDEX CONCURRENTLY under this name and definition; the migration then skips it.
CREATE INDEX IF NOT EXISTS credit_usage_time ON credit_usage (ledger_id, at_ms);
