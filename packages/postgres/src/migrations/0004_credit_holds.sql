-- Latch 0004: credit holds (reserve against remaining credits, commit the actual burn, void)
-- and versioned usage events (a correction replaces an event's amount). Like 0003, balances
-- are not stored: holds are decided under the ledger's row lock, with the database clock
-- (`clock_timestamp()`) as the store's clock. Append-only: never edit.

-- The version of a usage event: a higher one replaces the row's amount, time and hash.
ALTER TABLE credit_usage ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

CREATE TABLE credit_holds (
  hold_id     text COLLATE "C" PRIMARY KEY,
  ledger_id   text COLLATE "C" NOT NULL REFERENCES credit_ledgers (ledger_id),
  feature_id  text COLLATE "C" NOT NULL REFERENCES credit_features (feature_id),
  amount      numeric NOT NULL CHECK (amount > 0),
  -- The reserve request's identity (ledger, feature, amount): retry vs conflict.
  hash        text NOT NULL,
  -- 'held' past expires_ms is expired: derived at read time, never swept.
  status      text NOT NULL CHECK (status IN ('held', 'committed', 'voided')),
  created_ms  bigint NOT NULL,
  expires_ms  bigint NOT NULL CHECK (expires_ms > created_ms),
  -- Set by the commit: the usage event it recorded and the commit's identity.
  event_id    text COLLATE "C",
  commit_hash text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
-- A ledger's unresolved holds (reserve and enforced usage count the unexpired ones).
CREATE INDEX credit_holds_held ON credit_holds (ledger_id, expires_ms) WHERE status = 'held';
