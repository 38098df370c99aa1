-- Latch 0009: refunds in the credit ledger. A money feature's usage may be negative (a refund:
-- the negative total of an event whose volume period tier reprices the period's earlier usage
-- lower), so credit_usage.amount loses its `>= 0` check of 0003. @latch/postgres refuses a
-- negative amount for a quantity feature before it writes (invalid_input naming `amount`), as
-- every backend does; what a refund returns is decided by core's credit engine at replay, so
-- no other column changes. Append-only: never edit.
-- compatible-from: 6

-- The name PostgreSQL gave the column check of 0003.
ALTER TABLE credit_usage DROP CONSTRAINT credit_usage_amount_check;
