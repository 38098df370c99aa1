export { MemoryApiKeyStore } from "./api-key-store.js";
export { MemoryCreditLedger, type MemoryCreditLedgerOptions } from "./credit-ledger.js";
export { MemoryObservationStore } from "./observation-store.js";
export { MemoryQuotaReservator, type MemoryQuotaReservatorOptions } from "./quota.js";
export { MemoryRatedRecordStore } from "./rated-record-store.js";
export { MemoryUsageCounter, type MemoryUsageCounterOptions } from "./usage-counter.js";
