/**
 * @latch/redis: hot two-phase quota and usage counters on Redis and Redis Cluster, as atomic
 * Lua scripts whose keys share one hash tag.
 */
export { failFastRedisOptions, type RedisClient } from "./client.js";
export { type AccountKeys, KeySpace, type ObservationKeys, type RatedKeys } from "./keys.js";
export { RedisObservationStore, type RedisStoreOptions } from "./observation-store.js";
export { RedisQuota, type RedisQuotaOptions } from "./quota.js";
export { RedisRatedRecordStore } from "./rated-record-store.js";
export { LUA_STATUS, type LuaStatus } from "./script-errors.js";
export { checkEvictionPolicy, SAFE_EVICTION_POLICY } from "./server-check.js";
export { UnsafeServerSettingError } from "./unsafe-server-setting-error.js";
export { RedisUsageCounter, type RedisUsageCounterOptions } from "./usage-counter.js";
