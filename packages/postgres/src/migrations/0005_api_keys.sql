-- Latch 0005: API keys. A key is found by the HMAC-SHA256 digest of its plaintext under a
-- server-side secret; the plaintext and its random body are never stored. `payload` is the
-- key's record without its two mutable fields (revoked_at, last_used_at, kept as columns so
-- that revoke and touch are single conditional UPDATEs). `owner` is the billing subject the
-- key acts for; reads are scoped with `owner @> <caller's owner>`. Append-only: never edit.

CREATE TABLE api_keys (
  id           text COLLATE "C" PRIMARY KEY,
  digest       text COLLATE "C" NOT NULL UNIQUE CHECK (digest ~ '^[0-9a-f]{64}$'),
  tenant_id    text COLLATE "C" NOT NULL,
  owner        jsonb NOT NULL,
  hash         text NOT NULL,
  payload      jsonb NOT NULL,
  revoked_at   timestamptz,
  last_used_at timestamptz,
  inserted_at  timestamptz NOT NULL DEFAULT now()
);
-- list: one tenant's keys in id order.
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);
