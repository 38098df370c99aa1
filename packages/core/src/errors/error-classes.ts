import type { AmbiguousModelError } from "./ambiguous-model-error.js";
import type { LatchErrorCode } from "./codes.js";
import type { CorruptRecordError } from "./corrupt-record-error.js";
import type { CurrencyMismatchError } from "./currency-mismatch-error.js";
import type { ExportError } from "./export-error.js";
import type { HighWatermarkError } from "./high-watermark-error.js";
import type { HoldAlreadyResolvedError } from "./hold-already-resolved-error.js";
import type { IdempotencyConflictError } from "./idempotency-conflict-error.js";
import type { InvalidTierConfigError } from "./invalid-tier-config-error.js";
import type { LatchError } from "./latch-error.js";
import type { NoPriceForMeterError } from "./no-price-for-meter-error.js";
import type { NoSnapshotForTierError } from "./no-snapshot-for-tier-error.js";
import type { NoSnapshotInEffectError } from "./no-snapshot-in-effect-error.js";
import type { OverflowError } from "./overflow-error.js";
import type { PrivilegeExceededError } from "./privilege-exceeded-error.js";
import type { QuotaUnavailableError } from "./quota-unavailable-error.js";
import type { LatchValidationError } from "./validation-error.js";

/**
 * Error code → the class every Latch package throws with it: what {@link LatchError.is}
 * narrows to. An adapter package that owns a code adds it here by declaration merging, e.g.
 * `@latch/postgres`:
 *
 * @example
 * declare module "@latch/core/adapter" {
 *   interface LatchErrorClasses { store_busy: PostgresBusyError }
 * }
 */
export interface LatchErrorClasses {
  invalid_input: LatchValidationError;
  no_price_for_meter: NoPriceForMeterError;
  no_snapshot_in_effect: NoSnapshotInEffectError;
  no_snapshot_for_tier: NoSnapshotForTierError;
  ambiguous_model: AmbiguousModelError;
  invalid_tier_config: InvalidTierConfigError;
  currency_mismatch: CurrencyMismatchError;
  overflow: OverflowError;
  idempotency_conflict: IdempotencyConflictError;
  quota_unavailable: QuotaUnavailableError;
  corrupt_record: CorruptRecordError;
  hold_already_resolved: HoldAlreadyResolvedError;
  export_failed: ExportError;
  high_watermark: HighWatermarkError;
  privilege_exceeded: PrivilegeExceededError;
}

/** The class of `code`'s errors; a `LatchError` with that code while its adapter is not imported. */
export type LatchErrorFor<C extends LatchErrorCode> = C extends keyof LatchErrorClasses
  ? LatchErrorClasses[C]
  : LatchError & { readonly code: C };

/**
 * The codes whose class an adapter package declares (and adds to {@link LatchErrorClasses}):
 * every other code's class is in `@latch/core`. A test keeps this, the interface and the code
 * list in agreement.
 * @internal
 */
export const ADAPTER_ERROR_CODES = {
  schema_not_migrated: "@latch/postgres",
  schema_incompatible: "@latch/postgres",
  store_busy: "@latch/postgres",
} as const satisfies Partial<Record<LatchErrorCode, string>>;
