export { LATCH_ERROR_CODES, type LatchErrorCode } from "./codes.js";
export { HighWatermarkError } from "./credit-errors.js";
export { LatchError, type LatchErrorOptions } from "./latch-error.js";
export {
  AmbiguousModelError,
  CurrencyMismatchError,
  InvalidTierConfigError,
  NoPriceForMeterError,
  NoSnapshotForTierError,
  NoSnapshotInEffectError,
  OverflowError,
} from "./pricing-errors.js";
export {
  CorruptRecordError,
  ExportError,
  type ExportErrorKind,
  HoldAlreadyResolvedError,
  IdempotencyConflictError,
  QuotaUnavailableError,
} from "./store-errors.js";
export { LatchValidationError, type ValidationIssue } from "./validation-error.js";
