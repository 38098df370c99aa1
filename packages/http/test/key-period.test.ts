import {
  ApiKeys,
  LatchValidationError,
  MemoryApiKeyStore,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
} from "@latch/core";
import { apiKeyQuotaAccount, type SetLimitOptions } from "@latch/core/adapter";
import { createBillingApp } from "@latch/http";
import { describe, expect, it } from "vitest";

// Budget periods of API key quotas over HTTP: POST /api/billing/keys takes `quota.period`
// (snake_case: `{ every, time_zone? }` or `{ rolling_ms }`), the key views return it, and the
// usage view of a key shows its period's bounds. A bad period is a 400 naming `quota.period…`;
// a period asked of a key that itself has a quota is a 403 naming `quota.period`.
const SECRET = "http-period-secret-http-period-secret-0123";
const TENANT = "acme";
// 2026-07-14 23:30 in Berlin (CEST, UTC+2): Berlin midnight is 22:00 UTC.
let now = Date.parse("2026-07-14T21:30:00Z");
const clock = () => now;

const quota = new MemoryQuotaReservator({ clock });
const keys = new ApiKeys({ store: new MemoryApiKeyStore(), secret: SECRET, quota, clock });
const app = createBillingApp({ keys, records: new MemoryRatedRecordStore(), clock });

async function call(key: string, method: string, path: string, body?: unknown) {
  const response = await app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    type: response.headers.get("content-type") ?? "",
    text,
    json: JSON.parse(text),
  };
}

const admin = keys.create({
  owner: { tenantId: TENANT },
  name: "admin",
  scopes: ["keys:read", "keys:write", "usage:read"],
});

describe("API key quota periods over HTTP", () => {
  it("creates a key with a daily Europe/Berlin quota, returns the period on every view, and resets at Berlin midnight", async () => {
    const { plaintext } = await admin;
    const period = { every: "day", time_zone: "Europe/Berlin" };
    const created = await call(plaintext, "POST", "/api/billing/keys", {
      name: "daily",
      scopes: ["usage:read"],
      quota: { unit: "tokens", limit: 1000, period },
    });
    expect(created.status, created.text).toBe(201);
    expect(created.json.key.quota).toEqual({ unit: "tokens", limit: 1000, period });
    const id: string = created.json.key.id;

    const read = await call(plaintext, "GET", `/api/billing/keys/${id}`);
    expect(read.json.quota).toEqual({ unit: "tokens", limit: 1000, period });
    const listed = await call(plaintext, "GET", "/api/billing/keys");
    expect(listed.json.items.find((k: { id: string }) => k.id === id).quota).toEqual({
      unit: "tokens",
      limit: 1000,
      period,
    });

    const held = await quota.reserve({
      holdId: "p1",
      account: apiKeyQuotaAccount(id),
      amount: 600,
      ttlMs: 60_000,
    });
    expect(held.granted).toBe(true);
    await quota.commit("p1", 600);

    const usage = `/api/billing/usage?from=2026-07-01T00:00:00Z&to=2026-07-16T00:00:00Z&key_id=${id}`;
    const before = await call(plaintext, "GET", usage);
    expect(before.status, before.text).toBe(200);
    expect(before.json.quota).toEqual({
      unit: "tokens",
      limit: 1000,
      spent: 600,
      held: 0,
      available: 400,
      period,
      period_start: "2026-07-13T22:00:00.000Z",
      period_end: "2026-07-14T22:00:00.000Z",
    });

    now = Date.parse("2026-07-14T22:00:00Z"); // Berlin midnight
    const after = await call(plaintext, "GET", usage);
    expect(after.json.quota).toEqual({
      unit: "tokens",
      limit: 1000,
      spent: 0,
      held: 0,
      available: 1000,
      period,
      period_start: "2026-07-14T22:00:00.000Z",
      period_end: "2026-07-15T22:00:00.000Z",
    });
  });

  it("takes a rolling window and a calendar period without a zone, and a key without a period shows no bounds", async () => {
    const { plaintext } = await admin;
    const rolling = await call(plaintext, "POST", "/api/billing/keys", {
      name: "rolling",
      scopes: [],
      quota: { unit: "money", currency: "USD", limit: "25.50", period: { rolling_ms: 3_600_000 } },
    });
    expect(rolling.status, rolling.text).toBe(201);
    expect(rolling.json.key.quota).toEqual({
      unit: "money",
      currency: "USD",
      limit: "25.50",
      period: { rolling_ms: 3_600_000 },
    });
    const monthly = await call(plaintext, "POST", "/api/billing/keys", {
      name: "monthly",
      scopes: [],
      quota: { unit: "tokens", limit: 5, period: { every: "month" } },
    });
    expect(monthly.json.key.quota).toEqual({ unit: "tokens", limit: 5, period: { every: "month" } });

    const once = await call(plaintext, "POST", "/api/billing/keys", {
      name: "once",
      scopes: [],
      quota: { unit: "tokens", limit: 5 },
    });
    expect(once.json.key.quota).toEqual({ unit: "tokens", limit: 5 });
    const usage = await call(
      plaintext,
      "GET",
      `/api/billing/usage?from=2026-07-01T00:00:00Z&to=2026-07-16T00:00:00Z&key_id=${once.json.key.id}`,
    );
    expect(usage.json.quota).toEqual({ unit: "tokens", limit: 5, spent: 0, held: 0, available: 5 });
  });

  it("answers a bad or hostile period with a 400 naming quota.period, never echoing it", async () => {
    const { plaintext } = await admin;
    const cases: Array<[unknown, string]> = [
      [{ every: "year" }, "quota.period"],
      [{ every: "Day" }, "quota.period"],
      [{ rolling_ms: 0 }, "quota.period.rolling_ms"],
      [{ rolling_ms: -1 }, "quota.period.rolling_ms"],
      [{ rolling_ms: 999 }, "quota.period.rolling_ms"],
      [{ rolling_ms: 1e300 }, "quota.period.rolling_ms"],
      [{ rolling_ms: "3600000" }, "quota.period"],
      [{ every: "day", time_zone: "<script>alert(1)</script>" }, "quota.period.time_zone"],
      [{ every: "day", time_zone: "Mars/Olympus_Mons" }, "quota.period.time_zone"],
      [{ every: "day", time_zone: "x".repeat(5_000) }, "quota.period.time_zone"],
      [{ every: "day", time_zone: "Europe/Berlin\u0000" }, "quota.period.time_zone"],
      [{ every: "day", time_zone: "../../etc/passwd" }, "quota.period.time_zone"],
      [{ every: "day", timeZone: "Europe/Berlin" }, "quota.period.timeZone"],
      [{ rollingMs: 3_600_000 }, "quota.period"],
      [{ every: "day", rolling_ms: 3_600_000 }, "quota.period"],
      ["daily", "quota.period"],
      [null, "quota.period"],
      [[{ every: "day" }], "quota.period"],
      [{}, "quota.period"],
    ];
    for (const [period, field] of cases) {
      const r = await call(plaintext, "POST", "/api/billing/keys", {
        name: "bad",
        scopes: [],
        quota: { unit: "tokens", limit: 1, period },
      });
      const label = JSON.stringify(period).slice(0, 80);
      expect(r.status, `${label}: ${r.text}`).toBe(400);
      expect(r.type).toBe("application/problem+json");
      expect(r.json.type).toBe("urn:latch:problem:invalid_input");
      const names = r.json["invalid-params"].map((p: { name: string }) => p.name);
      expect(names, label).toContain(field);
      for (const name of names) expect(name.startsWith("quota.period"), label).toBe(true);
      expect(r.text).not.toContain("<script>");
      expect(r.text).not.toContain("xxxxxxxxxx");
      expect(r.text).not.toContain("passwd");
    }
    // Prototype keys are unknown fields, not merged into the period.
    const proto = await call(
      plaintext,
      "POST",
      "/api/billing/keys",
      '{"name":"bad","scopes":[],"quota":{"unit":"tokens","limit":1,"period":{"every":"day","__proto__":{"rolling_ms":1}}}}',
    );
    expect(proto.status, proto.text).toBe(400);
    expect(proto.json["invalid-params"][0].name.startsWith("quota.period")).toBe(true);
  });

  it("refuses a period on a key minted by a key with a quota (403 naming quota.period)", async () => {
    const capped = await keys.create({
      owner: { tenantId: TENANT },
      name: "capped",
      scopes: ["keys:write"],
      quota: { unit: "tokens", limit: 100 },
    });
    for (const period of [{ every: "day" }, { rolling_ms: 60_000 }]) {
      const r = await call(capped.plaintext, "POST", "/api/billing/keys", {
        name: "child",
        scopes: [],
        quota: { unit: "tokens", limit: 10, period },
      });
      expect(r.status, r.text).toBe(403);
      expect(r.json.type).toBe("urn:latch:problem:privilege_exceeded");
      expect(r.json["invalid-params"]).toEqual([
        { name: "quota.period", in: "body", reason: expect.any(String) },
      ]);
    }
    // Without a period it is minted, paid out of the capped key's budget once.
    const ok = await call(capped.plaintext, "POST", "/api/billing/keys", {
      name: "child",
      scopes: [],
      quota: { unit: "tokens", limit: 10 },
    });
    expect(ok.status, ok.text).toBe(201);
    expect((await keys.quotaBalance(capped.key))?.spent).toBe(10);
  });

  it("a zone the quota store does not know (a database with older time-zone data) is a 400 naming quota.period.time_zone", async () => {
    // PostgresQuota computes calendar bounds from the database's time-zone data, which may be
    // older than this process's Intl: it then refuses a zone core accepted, as below.
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
    const older = new ApiKeys({ store: new MemoryApiKeyStore(), secret: SECRET, quota: new OlderZones() });
    const olderApp = createBillingApp({ keys: older, records: new MemoryRatedRecordStore() });
    const root = await older.create({ owner: { tenantId: TENANT }, name: "root", scopes: ["keys:write"] });
    const response = await olderApp.request("/api/billing/keys", {
      method: "POST",
      headers: { authorization: `Bearer ${root.plaintext}`, "content-type": "application/json" },
      body: JSON.stringify({
        name: "chile",
        scopes: [],
        quota: { unit: "tokens", limit: 10, period: { every: "day", time_zone: "America/Coyhaique" } },
      }),
    });
    const json = (await response.json()) as { "invalid-params": unknown };
    expect(response.status, JSON.stringify(json)).toBe(400);
    expect(json["invalid-params"]).toEqual([
      { name: "quota.period.time_zone", in: "body", reason: "unknown to this database" },
    ]);
    expect((await older.list({ tenantId: TENANT }, { limit: 10 })).items.map((k) => k.name)).toEqual([
      "root",
    ]);
  });
});
