-- Latch 0007: idempotent usage-counter adds. An add with an operation id (the facade passes
-- the event id) is recorded with the answer it got, in the same transaction as the add, so a
-- retried add, a re-rating or a second worker recording the same event counts once and gets
-- the first answer. Operation records are kept for a retention the caller passes (default
-- 100 days) and purged after it. Append-only: never edit.
-- compatible-from: 6

CREATE TABLE usage_counter_ops (
  key        text COLLATE "C" NOT NULL,
  period     text COLLATE "C" NOT NULL,
  op_id      text COLLATE "C" NOT NULL,
  quantity   bigint NOT NULL CHECK (quantity >= 0),
  previous   bigint NOT NULL CHECK (previous >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (key, period, op_id)
);
-- The retention purge: oldest first.
CREATE INDEX usage_counter_ops_age ON usage_counter_ops (created_at);

-- Result status: added | replay | conflict | overflow; previous = the total before the add
-- (for a replay or conflict: the first add's answer); stored = the quantity recorded for the
-- operation (a conflict's error compares it with the incoming one).
CREATE FUNCTION counter_add(p_key text, p_period text, p_op text, p_qty bigint, p_retention_ms bigint,
  OUT status text, OUT previous bigint, OUT stored bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  op record;
BEGIN
  -- Adds of one key and period are serialised by the counter row's lock.
  INSERT INTO usage_counters (key, period, total) VALUES (p_key, p_period, 0)
  ON CONFLICT (key, period) DO NOTHING;
  SELECT total INTO previous FROM usage_counters WHERE key = p_key AND period = p_period FOR UPDATE;
  -- A new statement after the lock: it sees an operation that a concurrent add of the same
  -- id committed while this one waited.
  SELECT o.quantity, o.previous AS first_answer INTO op FROM usage_counter_ops o
  WHERE o.key = p_key AND o.period = p_period AND o.op_id = p_op
    AND o.created_at > now() - p_retention_ms * interval '1 millisecond';
  IF FOUND THEN
    previous := op.first_answer;
    stored := op.quantity;
    status := CASE WHEN op.quantity = p_qty THEN 'replay' ELSE 'conflict' END;
    RETURN;
  END IF;
  IF previous + p_qty > 9007199254740991 THEN
    status := 'overflow';
    RETURN;
  END IF;
  UPDATE usage_counters SET total = total + p_qty WHERE key = p_key AND period = p_period;
  -- An expired record of the same id (past retention) is replaced.
  INSERT INTO usage_counter_ops (key, period, op_id, quantity, previous)
  VALUES (p_key, p_period, p_op, p_qty, previous)
  ON CONFLICT (key, period, op_id) DO UPDATE
  SET quantity = EXCLUDED.quantity, previous = EXCLUDED.previous, created_at = now();
  stored := p_qty;
  status := 'added';
END
$fn$;
