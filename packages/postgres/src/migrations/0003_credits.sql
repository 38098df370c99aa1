-- Latch 0003: prepaid credits (features, ledgers, grants, resets, usage burns). Balances are
-- not stored: @latch/core's credit engine replays these facts, so they are the whole truth.
-- Amounts are exact `numeric`; times are epoch milliseconds (`bigint`), the precision the
-- engine uses. Every write to a ledger locks its row first (one lock per transaction, so no
-- deadlocks). Append-only: never edit.

CREATE TABLE credit_features (
  feature_id text COLLATE "C" PRIMARY KEY,
  hash       text NOT NULL,
  payload    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_ledgers (
  ledger_id         text COLLATE "C" PRIMARY KEY,
  hash              text NOT NULL,
  payload           jsonb NOT NULL,
  -- The latest reset; NULL until the first. Nothing is granted, voided or reset before it.
  high_watermark_ms bigint,
  -- Grants created so far: the next grant's sequence (creation order) is grant_count + 1.
  grant_count       integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE credit_grants (
  grant_id      text COLLATE "C" PRIMARY KEY,
  ledger_id     text COLLATE "C" NOT NULL REFERENCES credit_ledgers (ledger_id),
  feature_id    text COLLATE "C" NOT NULL REFERENCES credit_features (feature_id),
  sequence      integer NOT NULL,
  hash          text NOT NULL,
  -- The stored grant as @latch/core returns it, without voidedAt.
  payload       jsonb NOT NULL,
  amount        numeric NOT NULL CHECK (amount > 0),
  priority      smallint NOT NULL CHECK (priority BETWEEN 1 AND 255),
  effective_ms  bigint NOT NULL,
  expires_ms    bigint CHECK (expires_ms > effective_ms),
  rollover_type text CHECK (rollover_type IN ('ORIGINAL_AMOUNT', 'REMAINING_AMOUNT')),
  rollover_max  numeric CHECK (rollover_max > 0),
  voided_ms     bigint,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (ledger_id, sequence)
);

CREATE TABLE credit_resets (
  ledger_id  text COLLATE "C" NOT NULL REFERENCES credit_ledgers (ledger_id),
  at_ms      bigint NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ledger_id, at_ms)
);

CREATE TABLE credit_usage (
  ledger_id  text COLLATE "C" NOT NULL REFERENCES credit_ledgers (ledger_id),
  feature_id text COLLATE "C" NOT NULL REFERENCES credit_features (feature_id),
  event_id   text COLLATE "C" NOT NULL,
  at_ms      bigint NOT NULL,
  amount     numeric NOT NULL CHECK (amount >= 0),
  hash       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ledger_id, feature_id, event_id)
);
