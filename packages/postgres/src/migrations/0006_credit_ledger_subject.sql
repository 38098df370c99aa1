-- Latch 0006: list credit ledgers by subject (`CreditLedger.listLedgers`). A listing always
-- names a tenant in practice (the HTTP API scopes it to the caller's), so the ledgers of one
-- tenant are found in ledger_id order by this index alone (keyset pages: tenant = $1 AND
-- ledger_id > $cursor ORDER BY ledger_id); the other subject fields are then checked with
-- `payload->'subject' @> …` on the few rows read. ledger_id is COLLATE "C" (0003), so the
-- index's order is the listing's. Append-only: never edit.

CREATE INDEX credit_ledgers_tenant ON credit_ledgers ((payload->'subject'->>'tenantId'), ledger_id);
