import { PGlite } from "@electric-sql/pglite";
import { ApiKeys } from "@latch/core";
import { quotaPeriodBounds } from "@latch/core/adapter";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPglite, migrate, PostgresApiKeyStore, PostgresQuota, type Queryable } from "../src/index.js";

// A key quota's period on PostgreSQL end to end: ApiKeys.create sets it on PostgresQuota (whose
// calendar bounds come from the database's time-zone data and clock), and PostgresApiKeyStore
// keeps it in the existing `payload` JSON column (no migration). The store round trip on every
// backend is in @latch/testkit's ApiKeyStore suite.
const schema = "latch";
const secret = "postgres-key-period-secret-postgres-key-01";
let pglite: PGlite;
let db: Queryable;
const owner = { tenantId: "acme" };

beforeAll(async () => {
  pglite = new PGlite();
  db = fromPglite(pglite);
  await migrate(db, { schema });
}, 60_000);
afterAll(async () => {
  await pglite.close();
});

describe("API key quota periods on PostgreSQL", () => {
  it("stores a Europe/Berlin daily period in payload and bounds the key's balance by Berlin days", async () => {
    const quota = new PostgresQuota(db, { schema });
    const keys = new ApiKeys({ store: new PostgresApiKeyStore(db, { schema }), secret, quota });
    const period = { every: "day", timeZone: "Europe/Berlin" } as const;
    const before = Date.now();
    const { key, plaintext } = await keys.create({
      owner,
      name: "daily",
      scopes: [],
      quota: { unit: "money", currency: "EUR", limit: "25.5", period },
    });
    const balance = await keys.quotaBalance(key);
    const after = Date.now();

    const { rows } = await db.query(`SELECT payload FROM "${schema}".api_keys WHERE id = $1`, [key.id]);
    expect((rows[0] as { payload: { quota: unknown } }).payload.quota).toEqual({
      unit: "money",
      currency: "EUR",
      limit: "25.5",
      period,
    });
    const auth = await keys.authenticate(plaintext);
    expect(auth.ok && auth.key.quota).toEqual({ unit: "money", currency: "EUR", limit: "25.5", period });
    expect((await keys.get(owner, key.id))?.quota?.period).toEqual(period);

    expect(balance).toMatchObject({ limit: 25_500_000, spent: 0, held: 0, available: 25_500_000 });
    // The database's clock is this machine's: its Berlin day is the one of before or of after.
    const days = [quotaPeriodBounds(period, before), quotaPeriodBounds(period, after)];
    expect(days).toContainEqual({ start: balance?.periodStart, end: balance?.periodEnd });
  });

  it("keeps a rolling window and a key without a period apart", async () => {
    const quota = new PostgresQuota(db, { schema });
    const keys = new ApiKeys({ store: new PostgresApiKeyStore(db, { schema }), secret, quota });
    const rolling = await keys.create({
      owner,
      name: "rolling",
      scopes: [],
      quota: { unit: "tokens", limit: 10, period: { rollingMs: 3_600_000 } },
    });
    expect((await keys.get(owner, rolling.key.id))?.quota).toEqual({
      unit: "tokens",
      limit: 10,
      period: { rollingMs: 3_600_000 },
    });
    const window = await keys.quotaBalance(rolling.key);
    expect((window?.periodEnd ?? 0) - (window?.periodStart ?? 0)).toBeGreaterThanOrEqual(3_600_000 - 1);

    const once = await keys.create({ owner, name: "once", scopes: [], quota: { unit: "tokens", limit: 10 } });
    expect((await keys.get(owner, once.key.id))?.quota).toEqual({ unit: "tokens", limit: 10 });
    expect(await keys.quotaBalance(once.key)).toEqual({ limit: 10, spent: 0, held: 0, available: 10 });
  });

  it("reads a key whose zone this process's Intl does not know (written by a process with newer tz data): the owner's keys still list", async () => {
    const quota = new PostgresQuota(db, { schema });
    const keys = new ApiKeys({ store: new PostgresApiKeyStore(db, { schema }), secret, quota });
    const tenant = { tenantId: "newer-tzdata" };
    const plain = await keys.create({ owner: tenant, name: "plain", scopes: [] });
    const zoned = await keys.create({
      owner: tenant,
      name: "zoned",
      scopes: [],
      quota: { unit: "tokens", limit: 10, period: { every: "day", timeZone: "Europe/Berlin" } },
    });
    // As a process whose Intl knows a zone from newer time-zone data (such as
    // America/Coyhaique, tzdata 2025b) stores it; this process's Intl does not know the name.
    const newer = "America/Tzdata_Newer_Than_Intl";
    expect(() => new Intl.DateTimeFormat("en-US", { timeZone: newer })).toThrow(RangeError);
    await db.query(
      `UPDATE "${schema}".api_keys SET payload = jsonb_set(payload::jsonb, '{quota,period,timeZone}', to_jsonb($2::text)) WHERE id = $1`,
      [zoned.key.id, newer],
    );
    const period = { every: "day" as const, timeZone: newer };
    const listed = (await keys.list(tenant, { limit: 10 })).items;
    expect(listed.map((k) => k.name).sort()).toEqual(["plain", "zoned"]);
    expect((await keys.get(tenant, zoned.key.id))?.quota?.period).toEqual(period);
    const auth = await keys.authenticate(zoned.plaintext);
    expect(auth.ok && auth.key.quota?.period).toEqual(period);
    expect((await keys.authenticate(plain.plaintext)).ok).toBe(true);
    // New keys are still checked against this process's Intl.
    await expect(
      keys.create({ owner: tenant, name: "x", scopes: [], quota: { unit: "tokens", limit: 1, period } }),
    ).rejects.toMatchObject({ code: "invalid_input" });
  });
});
