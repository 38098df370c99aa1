import {
  type ConformanceSuite,
  observationStoreSuite,
  quotaReservatorSuite,
  ratedRecordStoreSuite,
  usageCounterSuite,
} from "@latch/testkit";
import {
  type RedisClient,
  RedisObservationStore,
  RedisQuota,
  RedisRatedRecordStore,
  RedisUsageCounter,
} from "../../src/index.js";
import { KeySpace } from "../../src/keys.js";
import { countObservations, countVersions } from "./inspect.js";

/**
 * Every `@latch/testkit` suite of a contract the Redis adapter implements (quota, usage
 * counter, observations, rated records) against `client()`, under `options.keyPrefix`, with
 * raw readers of the documented key layout. Each test awaits `client()`, so a server that
 * cannot be reached fails it (never a skip).
 */
export function redisSuites(
  client: () => Promise<RedisClient>,
  options: { keyPrefix: string; timeoutMs: number },
): ConformanceSuite[] {
  const { keyPrefix } = options;
  return [
    quotaReservatorSuite({
      create: async () => new RedisQuota(await client(), options),
      periods: {
        create: async () => {
          const c = await client();
          return {
            quota: new RedisQuota(c, options),
            // Ends the current calendar period now, by the server's clock: the next script rolls it.
            endPeriod: async (account) => {
              const [seconds, micros] = await c.time();
              const now = Number(seconds) * 1_000 + Math.floor(Number(micros) / 1_000);
              await c.hset(new KeySpace(keyPrefix).accountKeys(account).account, "pend", String(now));
            },
            // The queue's live entries: fields u:<seq> of the account's hash.
            windowEntries: async (account) => {
              const fields = await c.hkeys(new KeySpace(keyPrefix).accountKeys(account).account);
              return fields.filter((field) => field.startsWith("u:")).length;
            },
          };
        },
      },
    }),
    usageCounterSuite({ create: async () => new RedisUsageCounter(await client(), options) }),
    observationStoreSuite({
      create: async () => new RedisObservationStore(await client(), options),
      // Raw reads of the store's hash, not through the adapter.
      inspect: {
        countObservations: async (eventId) => countObservations(await client(), keyPrefix, eventId),
      },
    }),
    ratedRecordStoreSuite({
      create: async () => new RedisRatedRecordStore(await client(), options),
      inspect: { countVersions: async (eventId) => countVersions(await client(), keyPrefix, eventId) },
    }),
  ];
}
