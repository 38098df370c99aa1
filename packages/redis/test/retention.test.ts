import { afterAll, describe, expect, it } from "vitest";
import { KeySpace, RedisQuota } from "../src/index.js";
import { connectRedis, deleteByPrefix, keysByPrefix, REDIS_URL, runPrefix } from "./support/redis.js";

// The shared server at REDIS_URL, under this run's own key prefix. Every test awaits the
// connection, so an unreachable server fails each test (never a skip).
const keyPrefix = runPrefix("retention");
const connected = connectRedis(REDIS_URL);
connected.catch(() => undefined); // reported by each test that awaits it

afterAll(async () => {
  const client = await connected.catch(() => undefined);
  if (client === undefined) return;
  await deleteByPrefix(client, keyPrefix);
  expect(await keysByPrefix(client, keyPrefix)).toEqual([]);
  await client.quit();
});

const CYCLES = 100_000;
const IN_FLIGHT = 500;
const RETENTION_MS = 1_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("RedisQuota purges resolved holds after holdRetentionMs", () => {
  it("defaults to one hour", async () => {
    const raw = await connected;
    const quota = new RedisQuota(raw, { keyPrefix, timeoutMs: 10_000 });
    const account = `default-${process.pid}`;
    await quota.setLimit(account, 100);
    await quota.reserve({ holdId: `default-${process.pid}`, account, amount: 1, ttlMs: 1_000 });
    await quota.commit(`default-${process.pid}`, 1);
    const ttl = await raw.pttl(new KeySpace(keyPrefix).hold(`default-${process.pid}`));
    expect(ttl).toBeGreaterThan(59 * 60 * 1_000);
    expect(ttl).toBeLessThanOrEqual(60 * 60 * 1_000);
  });

  for (const allowEvictingPolicy of [false, true]) {
    const mode = allowEvictingPolicy ? "with settled markers (allowEvictingPolicy)" : "by default";
    it(`keeps storage bounded over ${CYCLES.toLocaleString("en-US")} reserve/commit cycles, ${mode}`, async () => {
      const raw = await connected;
      const prefix = `${keyPrefix}:${allowEvictingPolicy ? "markers" : "plain"}`;
      const keys = new KeySpace(prefix);
      const quota = new RedisQuota(raw, {
        keyPrefix: prefix,
        timeoutMs: 10_000,
        holdRetentionMs: RETENTION_MS,
        allowEvictingPolicy,
      });
      const accounts = Array.from({ length: 4 }, (_, i) => `bounded-${i}`);
      for (const account of accounts) await quota.setLimit(account, Number.MAX_SAFE_INTEGER);
      /** Keys under the prefix, and settled markers (hash fields) with their index entries. */
      const storage = async () => {
        let markers = 0;
        let indexed = 0;
        for (const account of accounts) {
          const { account: hash, settled } = keys.accountKeys(account);
          const own = (await raw.hmget(hash, "limit", "spent", "held", "due")).filter((v) => v !== null);
          markers += (await raw.hlen(hash)) - own.length; // every other field is a marker
          indexed += await raw.zcard(settled);
        }
        return { keys: (await keysByPrefix(raw, prefix)).length, markers, indexed };
      };
      const cycle = async (i: number) => {
        const account = accounts[i % accounts.length] as string;
        const holdId = `cycle-${i}`;
        const r = await quota.reserve({ holdId, account, amount: 3, ttlMs: 60_000 });
        expect(r.granted).toBe(true);
        expect(await quota.commit(holdId, 2)).toEqual({ committed: 2 });
      };

      const samples: Array<Awaited<ReturnType<typeof storage>>> = [];
      for (let i = 0; i < CYCLES; i += IN_FLIGHT) {
        await Promise.all(Array.from({ length: IN_FLIGHT }, (_, j) => cycle(i + j)));
        if ((i + IN_FLIGHT) % 10_000 === 0) samples.push(await storage());
      }
      // Generous bounds: far below one record per cycle. What is stored is about the cycles
      // of the last retention window (plus what Redis has yet to expire), not all 100,000.
      for (const sample of samples) {
        expect(sample.keys).toBeLessThan(CYCLES / 2);
        expect(sample.markers).toBeLessThan(CYCLES / 2);
        expect(sample.indexed).toBe(sample.markers);
      }
      if (!allowEvictingPolicy) expect(samples.every((s) => s.markers === 0 && s.indexed === 0)).toBe(true);

      // Past the retention nothing of the holds is left but the accounts' own keys (markers
      // are purged by later resolutions on the account, up to 100 per call).
      await sleep(RETENTION_MS + 1_000);
      for (let i = CYCLES; i < CYCLES + 400; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => cycle(i + j)));
      }
      await sleep(RETENTION_MS + 1_000);
      const after = await storage();
      // Each account: its hash and its sorted set of holds (empty sorted sets do not exist), and
      // with markers its settled index while the last markers are within the retention.
      expect(after.keys).toBeLessThanOrEqual(accounts.length * 2);
      expect(after.markers).toBeLessThanOrEqual(400);
      expect(after.indexed).toBe(after.markers);
      for (const account of accounts) {
        expect(await quota.balance(account)).toEqual({
          limit: Number.MAX_SAFE_INTEGER,
          spent: ((CYCLES + 400) / accounts.length) * 2,
          held: 0,
          available: Number.MAX_SAFE_INTEGER - ((CYCLES + 400) / accounts.length) * 2,
        });
      }
    }, 300_000);
  }
});
