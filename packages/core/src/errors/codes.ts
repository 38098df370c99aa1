/**
 * The closed set of error codes every Latch package throws. Codes are stable: match on
 * `error.code` (or `LatchError.is(error, code)`), never on the message. Each code has one
 * class; `error-classes.ts` maps the codes to them and names the package of the few whose
 * class an adapter declares.
 */
export const LATCH_ERROR_CODES = [
  /** Input failed validation; `issues` names each bad field by path. */
  "invalid_input",
  /** A non-zero meter has no price in the snapshot: never billed as $0. */
  "no_price_for_meter",
  /** No price snapshot is in effect for the model at the observation's time. */
  "no_snapshot_in_effect",
  /** The model has a snapshot in effect, but none for the call's service tier (nor one declaring it a fallback). */
  "no_snapshot_for_tier",
  /** The call's model id matches more than one priced model at the same matching rule. */
  "ambiguous_model",
  /** A tier configuration is inconsistent (order, gaps, missing prices, bad baseline). */
  "invalid_tier_config",
  /** Two amounts in different currencies were combined. */
  "currency_mismatch",
  /** A quantity or amount left the exactly representable range. */
  "overflow",
  /** The same id arrived again with a different payload. */
  "idempotency_conflict",
  /** The quota store could not answer; quota fails closed. */
  "quota_unavailable",
  /** Data read back from storage does not match its schema or hash. */
  "corrupt_record",
  /** A hold was already committed, voided or expired. */
  "hold_already_resolved",
  /** An export could not be written. */
  "export_failed",
  /** A credit grant, void or reset was dated before the ledger's latest reset. */
  "high_watermark",
  /** An API key asked for more than it has: a minted key beyond its minter's, or a revoke of a key with more scopes. */
  "privilege_exceeded",
  /** `@latch/postgres`: the schema is behind the migration the package needs; run `migrate()`. */
  "schema_not_migrated",
  /** `@latch/postgres`: the schema was migrated past what the package can use; upgrade it. */
  "schema_incompatible",
  /** A store gave up on a transaction (lock or statement timeout, serialization failure, deadlock); nothing was written, retry. */
  "store_busy",
] as const;

export type LatchErrorCode = (typeof LATCH_ERROR_CODES)[number];
