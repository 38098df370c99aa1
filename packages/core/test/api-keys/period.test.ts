import { describe, expect, it } from "vitest";
import { apiKeyQuotaAccount, type SetLimitOptions } from "../../src/adapter.js";
import { PrivilegeExceededError } from "../../src/errors/index.js";
import { ApiKeys, LatchValidationError, MemoryApiKeyStore, MemoryQuotaReservator } from "../../src/index.js";

const secret = "core-period-secret-core-period-secret-01";
const owner = { tenantId: "acme" };

/** ApiKeys and a memory quota on one movable clock (epoch ms). */
function setup(start: number) {
  let now = start;
  const quota = new MemoryQuotaReservator({ clock: () => now });
  const store = new MemoryApiKeyStore();
  const keys = new ApiKeys({ store, secret, quota, clock: () => now });
  const at = (ms: number): void => {
    now = ms;
  };
  return { keys, quota, store, at };
}

/** Reserves and commits `amount` on the key's quota account; whether it was granted. */
async function spend(quota: MemoryQuotaReservator, keyId: string, amount: number, holdId: string) {
  const held = await quota.reserve({ holdId, account: apiKeyQuotaAccount(keyId), amount, ttlMs: 60_000 });
  if (held.granted) await quota.commit(holdId, amount);
  return held.granted;
}

describe("API key quota periods", () => {
  it("a daily Europe/Berlin quota starts again at Berlin midnight, not UTC midnight", async () => {
    // 2026-07-14 23:30 Berlin (CEST, UTC+2) = 21:30 UTC; Berlin midnight is 22:00 UTC.
    const { keys, quota, store, at } = setup(Date.parse("2026-07-14T21:30:00Z"));
    const period = { every: "day", timeZone: "Europe/Berlin" } as const;
    const { key } = await keys.create({
      owner,
      name: "daily",
      scopes: [],
      quota: { unit: "tokens", limit: 100, period },
    });
    expect(key.quota).toEqual({ unit: "tokens", limit: 100, period });
    expect((await store.get(owner, key.id))?.quota).toEqual({ unit: "tokens", limit: 100, period });

    expect(await spend(quota, key.id, 80, "h1")).toBe(true);
    expect(await spend(quota, key.id, 30, "h2")).toBe(false); // 80 + 30 > 100 today
    expect(await keys.quotaBalance(key)).toEqual({
      limit: 100,
      spent: 80,
      held: 0,
      available: 20,
      periodStart: Date.parse("2026-07-13T22:00:00Z"),
      periodEnd: Date.parse("2026-07-14T22:00:00Z"),
    });

    // One millisecond before Berlin midnight: still the same day.
    at(Date.parse("2026-07-14T21:59:59.999Z"));
    expect((await keys.quotaBalance(key))?.spent).toBe(80);

    // Berlin midnight (22:00 UTC, two hours before UTC midnight): spent starts again at 0.
    at(Date.parse("2026-07-14T22:00:00Z"));
    expect(await keys.quotaBalance(key)).toEqual({
      limit: 100,
      spent: 0,
      held: 0,
      available: 100,
      periodStart: Date.parse("2026-07-14T22:00:00Z"),
      periodEnd: Date.parse("2026-07-15T22:00:00Z"),
    });
    expect(await spend(quota, key.id, 100, "h3")).toBe(true);
    expect(await spend(quota, key.id, 1, "h4")).toBe(false);
  });

  it("a Berlin day across the October change is 25 hours long", async () => {
    const { keys } = setup(Date.parse("2026-10-25T12:00:00Z"));
    const { key } = await keys.create({
      owner,
      name: "m",
      scopes: [],
      quota: {
        unit: "money",
        currency: "EUR",
        limit: "5",
        period: { every: "day", timeZone: "Europe/Berlin" },
      },
    });
    const balance = await keys.quotaBalance(key);
    expect(balance?.periodStart).toBe(Date.parse("2026-10-24T22:00:00Z"));
    expect(balance?.periodEnd).toBe(Date.parse("2026-10-25T23:00:00Z"));
    expect(balance?.limit).toBe(5_000_000);
  });

  it("a key without a period keeps its limit for good; a rolling key reports its window", async () => {
    const start = Date.parse("2026-07-14T21:30:00Z");
    const { keys, quota, at } = setup(start);
    const once = (
      await keys.create({ owner, name: "once", scopes: [], quota: { unit: "tokens", limit: 10 } })
    ).key;
    expect(once.quota).toEqual({ unit: "tokens", limit: 10 });
    expect(await spend(quota, once.id, 10, "o1")).toBe(true);
    at(start + 40 * 86_400_000);
    expect(await keys.quotaBalance(once)).toEqual({ limit: 10, spent: 10, held: 0, available: 0 });

    const rolling = (
      await keys.create({
        owner,
        name: "rolling",
        scopes: [],
        quota: { unit: "tokens", limit: 10, period: { rollingMs: 3_600_000 } },
      })
    ).key;
    expect(rolling.quota?.period).toEqual({ rollingMs: 3_600_000 });
    const balance = await keys.quotaBalance(rolling);
    expect(balance?.periodEnd).toBe(start + 40 * 86_400_000);
    expect(balance?.periodStart).toBeDefined();
  });

  it("refuses a bad period naming quota.period, and sets no limit for it", async () => {
    const { keys } = setup(Date.parse("2026-07-14T00:00:00Z"));
    const hostile = [
      [{ every: "year" }, "quota.period"],
      [{ rollingMs: 0 }, "quota.period.rollingMs"],
      [{ rollingMs: 999.5 }, "quota.period"],
      [{ rollingMs: 400 * 86_400_000 }, "quota.period.rollingMs"],
      [{ every: "day", timeZone: "Mars/Olympus_Mons" }, "quota.period.timeZone"],
      [{ every: "day", timeZone: "<script>alert(1)</script>" }, "quota.period.timeZone"],
      [{ every: "day", timeZone: "x".repeat(5_000) }, "quota.period.timeZone"],
      [{ every: "day", timeZone: "Europe/Berlin\u0000" }, "quota.period.timeZone"],
      [{ every: "day", extra: 1 }, "quota.period"],
      ["daily", "quota.period"],
      [null, "quota.period"],
    ] as const;
    for (const [period, field] of hostile) {
      const error = await keys
        .create({ owner, name: "bad", scopes: [], quota: { unit: "tokens", limit: 1, period } as never })
        .catch((e: unknown) => e);
      expect(LatchValidationError.isInstance(error), JSON.stringify(period)).toBe(true);
      const paths = (error as LatchValidationError).issues.map((i) => i.path);
      // The most precise field zod can tell (a union's branch, or the period itself).
      expect(paths, JSON.stringify(period)).toContain(field);
      expect(paths.every((p) => p.startsWith("quota.period"))).toBe(true);
      // The message never echoes the value.
      expect((error as Error).message).not.toContain("<script>");
    }
    expect((await keys.list(owner, { limit: 100 })).items).toEqual([]);
  });

  it("a zone the quota store refuses (older time-zone data than Intl's) names quota.period.timeZone; no key", async () => {
    // As PostgresQuota refuses a zone its database does not know (sqlState 22023).
    class OlderZones extends MemoryQuotaReservator {
      override async setLimit(account: string, limit: number, options?: SetLimitOptions | AbortSignal) {
        const period = options instanceof AbortSignal ? undefined : options?.period;
        if (period && "every" in period && period.timeZone === "America/Coyhaique") {
          throw LatchValidationError.at(
            "QuotaReservator.setLimit",
            "period.timeZone",
            "unknown to this database",
          );
        }
        return super.setLimit(account, limit, options);
      }
    }
    const keys = new ApiKeys({ store: new MemoryApiKeyStore(), secret, quota: new OlderZones() });
    const error = await keys
      .create({
        owner,
        name: "chile",
        scopes: [],
        quota: { unit: "tokens", limit: 1, period: { every: "day", timeZone: "America/Coyhaique" } },
      })
      .catch((e: unknown) => e);
    expect(LatchValidationError.isInstance(error)).toBe(true);
    expect((error as LatchValidationError).subject).toBe("ApiKeys.create");
    expect((error as LatchValidationError).issues).toEqual([
      { path: "quota.period.timeZone", message: "unknown to this database" },
    ]);
    expect((await keys.list(owner, { limit: 10 })).items).toEqual([]);
  });

  it("a key with a quota mints no key with a period (quota.period); a key without one may", async () => {
    const { keys, quota } = setup(Date.parse("2026-07-14T10:00:00Z"));
    const capped = (
      await keys.create({
        owner,
        name: "capped",
        scopes: ["keys:write"],
        quota: { unit: "tokens", limit: 100 },
      })
    ).key;
    for (const period of [
      { every: "day" },
      { every: "month", timeZone: "Europe/Berlin" },
      { rollingMs: 60_000 },
    ]) {
      const error = await keys
        .mint(capped, {
          owner,
          name: "child",
          scopes: [],
          quota: { unit: "tokens", limit: 10, period } as never,
        })
        .catch((e: unknown) => e);
      expect(PrivilegeExceededError.isInstance(error)).toBe(true);
      expect((error as PrivilegeExceededError).field).toBe("quota.period");
    }
    // Nothing was given away by the refusals.
    expect((await keys.quotaBalance(capped))?.available).toBe(100);

    // A periodic minter is refused too: it pays the child's limit once, in its current period.
    const daily = (
      await keys.create({
        owner,
        name: "daily",
        scopes: ["keys:write"],
        quota: { unit: "tokens", limit: 100, period: { every: "day" } },
      })
    ).key;
    const refused = await keys
      .mint(daily, {
        owner,
        name: "c",
        scopes: [],
        quota: { unit: "tokens", limit: 10, period: { every: "day" } },
      })
      .catch((e: unknown) => e);
    expect((refused as PrivilegeExceededError).field).toBe("quota.period");
    // Without a period it is minted and paid for out of today's budget.
    await keys.mint(daily, { owner, name: "c", scopes: [], quota: { unit: "tokens", limit: 10 } });
    expect((await keys.quotaBalance(daily))?.spent).toBe(10);

    // A minter without a quota (unlimited itself) may give any period.
    const admin = (await keys.create({ owner, name: "admin", scopes: ["keys:write"] })).key;
    const { key } = await keys.mint(admin, {
      owner,
      name: "child",
      scopes: [],
      quota: { unit: "tokens", limit: 10, period: { every: "week", timeZone: "Europe/Berlin" } },
    });
    expect(key.quota?.period).toEqual({ every: "week", timeZone: "Europe/Berlin" });
    expect((await quota.balance(apiKeyQuotaAccount(key.id))).periodStart).toBe(
      Date.parse("2026-07-12T22:00:00Z"),
    );
  });
});
