export { MemoryCreditLedger } from "./credit-ledger.js";
export { MemoryObservationStore } from "./observation-store.js";
export { MemoryQuotaReservator, type MemoryQuotaReservatorOptions } from "./quota.js";
export { MemoryRatedRecordStore } from "./rated-record-store.js";
export { MemoryUsageCounter } from "./usage-counter.js";
