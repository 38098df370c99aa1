import { PGlite } from "@electric-sql/pglite";
import { ApiKeys } from "@latch/core";
import type { CreditHistoryEntry } from "@latch/core/adapter";
import { type BillingCredits, createBillingApp } from "@latch/http";
import {
  fromPglite,
  migrate,
  PostgresApiKeyStore,
  PostgresCreditLedger,
  PostgresRatedRecordStore,
} from "@latch/postgres";
import { uniqueId } from "@latch/testkit";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { listen } from "./support.js";

// The credit routes over HTTP, on PostgresCreditLedger and PostgresApiKeyStore on PGlite
// (PostgreSQL in process), like the rest of the API's tests.
const schema = "latch";
const pglite = new PGlite();
const db = fromPglite(pglite);
const SECRET = "http-credits-secret-http-credits-secret-0123";
const NOW = "2026-03-20T00:00:00.000Z";
const keys = new ApiKeys({
  store: new PostgresApiKeyStore(db, { schema }),
  secret: SECRET,
  clock: () => Date.parse(NOW),
});
const records = new PostgresRatedRecordStore(db, { schema });

const credits: BillingCredits = new PostgresCreditLedger(db, { schema });

const tenantA = uniqueId("tenant-a");
const tenantB = uniqueId("tenant-b");
const CREDIT_SCOPES = ["credits:read", "credits:write"];

let base = "";
let bareBase = "";
const closers: Array<() => Promise<void>> = [];
let adminA = "";
let adminB = "";
let readerA = "";
let writerA = "";
let billingOnlyA = "";
const ledgerB = uniqueId("ledger-b");

const issue = async (tenantId: string, scopes: string[], extra: object = {}) =>
  (await keys.create({ owner: { tenantId, ...extra }, name: "test", scopes })).plaintext;

let ready: Promise<void> | undefined;
beforeEach(async () => {
  ready ??= (async () => {
    await migrate(db, { schema });
    await credits.createFeature({
      featureId: "tokens",
      measure: { kind: "quantity", meters: ["input_tokens", "output_tokens"] },
    });
    await credits.createFeature({ featureId: "usd", measure: { kind: "money", currency: "USD" } });
    adminA = await issue(tenantA, CREDIT_SCOPES);
    adminB = await issue(tenantB, CREDIT_SCOPES);
    readerA = await issue(tenantA, ["credits:read"]);
    writerA = await issue(tenantA, ["credits:write"]);
    billingOnlyA = await issue(tenantA, ["billing:read", "keys:read", "keys:write", "usage:read"]);
    await credits.createLedger({ ledgerId: ledgerB, subject: { tenantId: tenantB } });
    await credits.grant({
      grantId: `${ledgerB}-g1`,
      ledgerId: ledgerB,
      featureId: "tokens",
      amount: "5000",
      effectiveAt: "2026-03-01T00:00:00Z",
    });
    const app = createBillingApp({ keys, records, credits, clock: () => Date.parse(NOW) });
    const server = await listen(app);
    base = server.url;
    closers.push(server.close);
    const bare = await listen(createBillingApp({ keys, records }));
    bareBase = bare.url;
    closers.push(bare.close);
  })();
  await ready;
}, 120_000);

afterAll(async () => {
  for (const close of closers) await close();
  await keys.flush();
  await pglite.close();
});

const get = (path: string, key: string, at = base) =>
  fetch(`${at}${path}`, { headers: { authorization: `Bearer ${key}` } });
const post = (path: string, key: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
const json = async <T = Record<string, unknown>>(response: Response, status: number): Promise<T> => {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as T;
};
const L = "/api/billing/credits/ledgers";
// Exact to the 30th decimal: a top-up of 10^-30 beside a plan of 1,000,000.5, after 1,200.25 used.
const TINY = `0.${"0".repeat(29)}1`;
const GRANTED = `1000000.5${"0".repeat(28)}1`;
const PLAN_BURNED = `1200.24${"9".repeat(28)}`;
const PLAN_LEFT = `998800.25${"0".repeat(27)}1`;

async function newLedger(key: string, body: Record<string, unknown> = {}): Promise<string> {
  const ledgerId = uniqueId("ledger");
  await json(await post(L, key, { ledger_id: ledgerId, ...body }), 201);
  return ledgerId;
}

/** Asserts a 400 problem naming `field`. */
async function expectBadInput(response: Response, field: string): Promise<void> {
  const text = await response.text();
  expect(response.status, text).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = JSON.parse(text) as {
    type: string;
    detail: string;
    "invalid-params": Array<{ name: string }>;
  };
  expect(problem.type).toBe("urn:latch:problem:invalid_input");
  expect(problem["invalid-params"].map((p) => p.name)).toContain(field);
  expect(problem.detail).toContain(field);
}

describe("credit routes over HTTP (a loopback server; PostgresCreditLedger on PGlite)", () => {
  it("lists every credit route in the OpenAPI document, which an OpenAPI validator accepts; without credits, none", async () => {
    const document = (await (await fetch(`${base}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const result = await new Validator().validate(document as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    // Every credit ledger lists ledgers (core's contract): no 501 is documented.
    expect(Object.keys(document.paths["/api/billing/credits/ledgers"]?.get?.responses ?? {})).not.toContain(
      "501",
    );
    const operations = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
    const creditRoutes = [
      "GET /api/billing/credits/ledgers",
      "POST /api/billing/credits/ledgers",
      "GET /api/billing/credits/ledgers/{ledgerId}",
      "POST /api/billing/credits/ledgers/{ledgerId}/grants",
      "GET /api/billing/credits/ledgers/{ledgerId}/grants",
      "POST /api/billing/credits/ledgers/{ledgerId}/grants/{grantId}/void",
      "POST /api/billing/credits/ledgers/{ledgerId}/reset",
      "GET /api/billing/credits/ledgers/{ledgerId}/balance",
      "GET /api/billing/credits/ledgers/{ledgerId}/history",
    ];
    expect(operations.sort()).toEqual(
      [
        "POST /api/billing/keys",
        "GET /api/billing/keys",
        "GET /api/billing/keys/{id}",
        "DELETE /api/billing/keys/{id}",
        "GET /api/billing/usage",
        "GET /billing/summary",
        "GET /billing/lines",
        "GET /billing/export",
        "GET /openapi.json",
        ...creditRoutes,
      ].sort(),
    );
    const grantOp = document.paths["/api/billing/credits/ledgers/{ledgerId}/grants"]?.post;
    expect(Object.keys(grantOp?.responses ?? {})).toEqual(
      expect.arrayContaining(["200", "201", "400", "401", "403", "404", "409"]),
    );

    // The app without credits neither serves nor documents them.
    const bare = (await (await fetch(`${bareBase}/openapi.json`)).json()) as { paths: object };
    expect(Object.keys(bare.paths).some((p) => p.includes("credits"))).toBe(false);
    expect((await get(L, adminA, bareBase)).status).toBe(404);
    expect((await get(`${L}/${ledgerB}/balance`, adminB, bareBase)).status).toBe(404);
  });

  it("creates ledgers for the caller's subject (idempotently), lists them across pages and reads one", async () => {
    const tenant = uniqueId("tenant-l");
    const admin = await issue(tenant, CREDIT_SCOPES);
    const created = await post(L, admin, {
      ledger_id: `${tenant}-main`,
      time_zone: "Europe/Paris",
      metadata: { plan: "pro" },
    });
    const body = await json<{ status: string; ledger: object }>(created, 201);
    expect(body).toEqual({
      status: "created",
      ledger: {
        ledger_id: `${tenant}-main`,
        subject: { tenant_id: tenant },
        time_zone: "Europe/Paris",
        metadata: { plan: "pro" },
      },
    });
    // The same body again: 200 already_exists; another body: 409.
    const again = await json<{ status: string }>(
      await post(L, admin, {
        ledger_id: `${tenant}-main`,
        time_zone: "Europe/Paris",
        metadata: { plan: "pro" },
      }),
      200,
    );
    expect(again.status).toBe("already_exists");
    const conflict = await post(L, admin, { ledger_id: `${tenant}-main`, time_zone: "UTC" });
    const problem = await json<{ type: string }>(conflict, 409);
    expect(conflict.headers.get("content-type")).toBe("application/problem+json");
    expect(problem.type).toBe("urn:latch:problem:idempotency_conflict");
    // A narrower subject of the caller's own tenant is fine.
    const project = await json<{ ledger: { subject: object } }>(
      await post(L, admin, { ledger_id: `${tenant}-p1`, subject: { tenant_id: tenant, project_id: "p1" } }),
      201,
    );
    expect(project.ledger.subject).toEqual({ tenant_id: tenant, project_id: "p1" });
    for (let i = 0; i < 6; i++) await json(await post(L, admin, { ledger_id: `${tenant}-x${i}` }), 201);

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await json<{
        items: Array<{ ledger_id: string; subject: { tenant_id: string } }>;
        next_cursor?: string;
      }>(
        await get(
          `${L}?page_size=3${cursor === undefined ? "" : `&cursor=${encodeURIComponent(cursor)}`}`,
          admin,
        ),
        200,
      );
      expect(page.items.length).toBeLessThanOrEqual(3);
      for (const item of page.items) expect(item.subject.tenant_id).toBe(tenant);
      seen.push(...page.items.map((l) => l.ledger_id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual([
      `${tenant}-main`,
      `${tenant}-p1`,
      ...[0, 1, 2, 3, 4, 5].map((i) => `${tenant}-x${i}`),
    ]);

    // A key of one project of the tenant sees only that project's ledgers.
    const projectKey = await issue(tenant, CREDIT_SCOPES, { projectId: "p1" });
    const own = await json<{ items: Array<{ ledger_id: string }> }>(await get(L, projectKey), 200);
    expect(own.items.map((l) => l.ledger_id)).toEqual([`${tenant}-p1`]);
    expect((await get(`${L}/${tenant}-main`, projectKey)).status).toBe(404);
    const made = await json<{ ledger: { subject: object } }>(
      await post(L, projectKey, { ledger_id: `${tenant}-p1b` }),
      201,
    );
    expect(made.ledger.subject).toEqual({ tenant_id: tenant, project_id: "p1" });

    const one = await json(await get(`${L}/${tenant}-main`, admin), 200);
    expect(one).toEqual(body.ledger);
    expect((await get(`${L}/${uniqueId("nope")}`, admin)).status).toBe(404);
  });

  it("lists ledgers with ids of 256 characters: the opaque cursor is longer than an id", async () => {
    const tenant = uniqueId("tenant-long");
    const admin = await issue(tenant, CREDIT_SCOPES);
    const ids = ["a", "b", "c"].map((c) => `${tenant}-${c.repeat(256 - tenant.length - 1)}`);
    for (const id of ids) await json(await post(L, admin, { ledger_id: id }), 201);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await json<{ items: Array<{ ledger_id: string }>; next_cursor?: string }>(
        await get(
          `${L}?page_size=1${cursor === undefined ? "" : `&cursor=${encodeURIComponent(cursor)}`}`,
          admin,
        ),
        200,
      );
      seen.push(...page.items.map((l) => l.ledger_id));
      if (page.next_cursor !== undefined) expect(page.next_cursor.length).toBeGreaterThan(256);
      cursor = page.next_cursor;
    } while (cursor !== undefined);
    expect(seen).toEqual(ids);
  });

  it("grants, lists grants, voids and answers balances in exact decimal strings (default at: the clock)", async () => {
    const ledgerId = await newLedger(adminA);
    const grant = await post(`${L}/${ledgerId}/grants`, adminA, {
      grant_id: `${ledgerId}-plan`,
      feature_id: "tokens",
      amount: "1000000.50",
      priority: 5,
      effective_at: "2026-03-01T00:00:00Z",
      expiration: { count: 1, unit: "MONTH" },
      rollover: { type: "ORIGINAL_AMOUNT", max_amount: "500000" },
      metadata: { source: "plan" },
    });
    const granted = await json<{ status: string; grant: Record<string, unknown> }>(grant, 201);
    expect(granted).toEqual({
      status: "granted",
      grant: {
        grant_id: `${ledgerId}-plan`,
        ledger_id: ledgerId,
        feature_id: "tokens",
        amount: "1000000.5",
        priority: 5,
        effective_at: "2026-03-01T00:00:00.000Z",
        expiration: { count: 1, unit: "MONTH" },
        rollover: { type: "ORIGINAL_AMOUNT", max_amount: "500000" },
        metadata: { source: "plan" },
        expires_at: "2026-04-01T00:00:00.000Z",
        sequence: 1,
      },
    });
    const retried = await post(`${L}/${ledgerId}/grants`, adminA, {
      grant_id: `${ledgerId}-plan`,
      feature_id: "tokens",
      amount: "1000000.5",
      priority: 5,
      effective_at: "2026-03-01T00:00:00.000Z",
      expiration: { count: 1, unit: "MONTH" },
      rollover: { type: "ORIGINAL_AMOUNT", max_amount: "500000" },
      metadata: { source: "plan" },
    });
    expect((await json<{ status: string }>(retried, 200)).status).toBe("already_exists");
    const conflict = await post(`${L}/${ledgerId}/grants`, adminA, {
      grant_id: `${ledgerId}-plan`,
      feature_id: "tokens",
      amount: "7",
      effective_at: "2026-03-01T00:00:00Z",
    });
    expect((await json<{ type: string }>(conflict, 409)).type).toBe("urn:latch:problem:idempotency_conflict");
    // A tiny top-up, exact to the 30th decimal, that burns first.
    await json(
      await post(`${L}/${ledgerId}/grants`, adminA, {
        grant_id: `${ledgerId}-topup`,
        feature_id: "tokens",
        amount: TINY,
        effective_at: "2026-03-02T00:00:00Z",
      }),
      201,
    );
    const list = await json<{ items: Array<{ grant_id: string; sequence: number }> }>(
      await get(`${L}/${ledgerId}/grants`, adminA),
      200,
    );
    expect(list.items.map((g) => [g.grant_id, g.sequence])).toEqual([
      [`${ledgerId}-plan`, 1],
      [`${ledgerId}-topup`, 2],
    ]);

    await credits.recordUsage({
      ledgerId,
      featureId: "tokens",
      eventId: "req-1",
      amount: "1200.25",
      at: "2026-03-05T00:00:00Z",
    });
    const balance = await json<{
      ledger_id: string;
      at: string;
      features: Array<Record<string, string>>;
      grants: Array<Record<string, unknown>>;
    }>(await get(`${L}/${ledgerId}/balance?at=2026-03-06T00:00:00Z`, readerA), 200);
    expect(balance.ledger_id).toBe(ledgerId);
    expect(balance.at).toBe("2026-03-06T00:00:00.000Z");
    expect(balance.features).toEqual([
      {
        feature_id: "tokens",
        balance: PLAN_LEFT,
        granted: GRANTED,
        burned: "1200.25",
        expired: "0",
        voided: "0",
        usage: "1200.25",
        overage: "0",
      },
    ]);
    expect(balance.grants.map((g) => [g.grant_id, g.balance, g.burned, g.active])).toEqual([
      [`${ledgerId}-plan`, PLAN_LEFT, PLAN_BURNED, true],
      [`${ledgerId}-topup`, "0", TINY, true],
    ]);
    // The same balances as the ledger itself, field for field.
    const direct = await credits.balance(ledgerId, "2026-03-06T00:00:00Z");
    expect(balance.features[0]?.balance).toBe(direct.features[0]?.balance);
    // No at: the app's clock (2026-03-20), after the usage.
    const now = await json<{ at: string }>(await get(`${L}/${ledgerId}/balance`, readerA), 200);
    expect(now.at).toBe(NOW);

    // Void the plan from 2026-03-10: its balance then is voided, usage after is overage.
    const voided = await post(`${L}/${ledgerId}/grants/${ledgerId}-plan/void`, writerA, {
      at: "2026-03-10T00:00:00Z",
    });
    const v = await json<{ status: string; grant: { voided_at: string } }>(voided, 200);
    expect(v.status).toBe("voided");
    expect(v.grant.voided_at).toBe("2026-03-10T00:00:00.000Z");
    const again = await post(`${L}/${ledgerId}/grants/${ledgerId}-plan/void`, writerA, {
      at: "2026-03-10T00:00:00Z",
    });
    expect((await json<{ status: string }>(again, 200)).status).toBe("already_voided");
    const elsewhen = await post(`${L}/${ledgerId}/grants/${ledgerId}-plan/void`, writerA, {
      at: "2026-03-11T00:00:00Z",
    });
    expect((await json<{ type: string }>(elsewhen, 409)).type).toBe("urn:latch:problem:idempotency_conflict");
    const after = await json<{ features: Array<{ balance: string; voided: string }> }>(
      await get(`${L}/${ledgerId}/balance?at=2026-03-12T00:00:00Z`, readerA),
      200,
    );
    expect(after.features[0]).toMatchObject({ balance: "0", voided: PLAN_LEFT });
    // A grant that is not in this ledger: 404, like a ledger.
    expect(
      (await post(`${L}/${ledgerId}/grants/${uniqueId("nope")}/void`, adminA, { at: "2026-03-10T00:00:00Z" }))
        .status,
    ).toBe(404);
    expect(
      (await post(`${L}/${ledgerId}/grants/${ledgerB}-g1/void`, adminA, { at: "2026-03-10T00:00:00Z" }))
        .status,
    ).toBe(404);
  });

  it("pages through the whole history exactly once, 4 entries at a time", async () => {
    const ledgerId = await newLedger(adminA);
    for (let i = 0; i < 12; i++) {
      await json(
        await post(`${L}/${ledgerId}/grants`, adminA, {
          grant_id: `${ledgerId}-g${i}`,
          feature_id: i % 2 === 0 ? "tokens" : "usd",
          amount: `${100 + i}.5`,
          priority: 1 + (i % 3),
          effective_at: `2026-03-${String(1 + i).padStart(2, "0")}T00:00:00Z`,
          expiration: { count: 3, unit: "DAY" },
        }),
        201,
      );
      await credits.recordUsage({
        ledgerId,
        featureId: i % 2 === 0 ? "tokens" : "usd",
        eventId: `e${i}`,
        amount: "40.125",
        at: `2026-03-${String(1 + i).padStart(2, "0")}T12:00:00Z`,
      });
    }
    await json(
      await post(`${L}/${ledgerId}/grants/${ledgerId}-g3/void`, adminA, { at: "2026-03-05T00:00:00Z" }),
      200,
    );
    await json(await post(`${L}/${ledgerId}/reset`, adminA, { at: "2026-03-14T00:00:00Z" }), 200);

    const from = "2026-03-01T00:00:00Z";
    const to = "2026-04-01T00:00:00Z";
    const expected = await credits.history({ ledgerId, from, to, limit: 10_000 });
    expect(expected.items.length).toBe(26); // 12 grants, a void, a reset and 12 usage periods: 7 pages of 4
    const seen: Array<Record<string, unknown>> = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await json<{
        ledger_id: string;
        page_size: number;
        items: Array<Record<string, unknown>>;
        next_cursor?: string;
      }>(
        await get(
          `${L}/${ledgerId}/history?from=${from}&to=${to}&page_size=4${cursor === undefined ? "" : `&cursor=${cursor}`}`,
          readerA,
        ),
        200,
      );
      expect(page.page_size).toBe(4);
      expect(page.items.length).toBeLessThanOrEqual(4);
      seen.push(...page.items);
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== undefined);
    expect(pages).toBe(Math.ceil(expected.items.length / 4));
    const wire = (e: CreditHistoryEntry) =>
      e.type === "RESET"
        ? {
            type: e.type,
            at: e.at,
            grants: e.grants.map((g) => ({
              grant_id: g.grantId,
              feature_id: g.featureId,
              before: g.before,
              after: g.after,
            })),
          }
        : {
            type: e.type,
            at: e.at,
            grant_id: e.grantId,
            feature_id: e.featureId,
            amount: e.amount,
            ...(e.type === "GRANT_USAGE" ? { period: e.period } : {}),
          };
    expect(seen).toEqual(expected.items.map(wire));
    expect(new Set(seen.map((e) => e.type))).toEqual(new Set(["GRANT", "VOID", "RESET", "GRANT_USAGE"]));
  });

  it("answers 409 naming the high watermark for a grant, void or reset dated before the latest reset", async () => {
    const ledgerId = await newLedger(adminA);
    await json(
      await post(`${L}/${ledgerId}/grants`, adminA, {
        grant_id: `${ledgerId}-g`,
        feature_id: "tokens",
        amount: "100",
        effective_at: "2026-03-01T00:00:00Z",
        rollover: { type: "REMAINING_AMOUNT" },
      }),
      201,
    );
    const reset = await json<{ status: string; at: string }>(
      await post(`${L}/${ledgerId}/reset`, adminA, { at: "2026-03-15T00:00:00Z" }),
      200,
    );
    expect(reset).toEqual({ status: "reset", ledger_id: ledgerId, at: "2026-03-15T00:00:00.000Z" });
    const same = await post(`${L}/${ledgerId}/reset`, adminA, { at: "2026-03-15T00:00:00Z" });
    expect((await json<{ status: string }>(same, 200)).status).toBe("already_reset");

    const cases: Array<[Response, string]> = [
      [
        await post(`${L}/${ledgerId}/grants`, adminA, {
          grant_id: `${ledgerId}-late`,
          feature_id: "tokens",
          amount: "50",
          effective_at: "2026-03-10T00:00:00Z",
        }),
        "effective_at",
      ],
      [
        await post(`${L}/${ledgerId}/grants/${ledgerId}-g/void`, adminA, { at: "2026-03-14T00:00:00Z" }),
        "at",
      ],
      [await post(`${L}/${ledgerId}/reset`, adminA, { at: "2026-03-01T00:00:00Z" }), "at"],
    ];
    for (const [response, field] of cases) {
      expect(response.headers.get("content-type")).toBe("application/problem+json");
      const problem = await json<{ type: string; status: number; detail: string; high_watermark: string }>(
        response,
        409,
      );
      expect(problem.type).toBe("urn:latch:problem:high_watermark");
      expect(problem.status).toBe(409);
      expect(problem.high_watermark).toBe("2026-03-15T00:00:00.000Z");
      expect(problem.detail).toContain("2026-03-15T00:00:00.000Z");
      expect(problem.detail.startsWith(`${field}:`)).toBe(true);
    }
    // Nothing was written: one grant, not voided; a grant at the watermark itself is fine.
    const grants = await json<{ items: Array<{ voided_at?: string }> }>(
      await get(`${L}/${ledgerId}/grants`, adminA),
      200,
    );
    expect(grants.items).toHaveLength(1);
    expect(grants.items[0]?.voided_at).toBeUndefined();
    await json(
      await post(`${L}/${ledgerId}/grants`, adminA, {
        grant_id: `${ledgerId}-on-time`,
        feature_id: "tokens",
        amount: "50",
        effective_at: "2026-03-15T00:00:00Z",
      }),
      201,
    );
  });

  it("answers 404 and leaks nothing when tenant A's key reads, grants to, voids or resets tenant B's ledger", async () => {
    const before = await credits.balance(ledgerB, "2026-03-30T00:00:00Z");
    const missing = uniqueId("ledger-missing");
    const attempts = (id: string) => [
      get(`${L}/${id}`, adminA),
      get(`${L}/${id}/grants`, adminA),
      get(`${L}/${id}/balance?at=2026-03-30T00:00:00Z`, adminA),
      get(`${L}/${id}/history?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z`, adminA),
      post(`${L}/${id}/grants`, adminA, {
        grant_id: uniqueId("steal"),
        feature_id: "tokens",
        amount: "1000000",
        effective_at: "2026-03-01T00:00:00Z",
      }),
      post(`${L}/${id}/grants/${ledgerB}-g1/void`, adminA, { at: "2026-03-02T00:00:00Z" }),
      post(`${L}/${id}/reset`, adminA, { at: "2026-03-25T00:00:00Z" }),
    ];
    const onB = await Promise.all(attempts(ledgerB));
    const onNothing = await Promise.all(attempts(missing));
    for (const [i, response] of onB.entries()) {
      expect(response.status, String(i)).toBe(404);
      const text = await response.text();
      expect(text).not.toContain(tenantB);
      expect(text).not.toContain(ledgerB);
      // Exactly what a ledger that does not exist answers (but for each request's own id).
      const withoutId = (body: string) => body.replace(/,"request_id":"[^"]*"/, "");
      expect(withoutId(text)).toBe(withoutId(await (onNothing[i] as Response).text()));
    }
    // A's listing and a subject naming B: nothing of B.
    const listed = await (await get(`${L}?page_size=1000`, adminA)).text();
    expect(listed).not.toContain(tenantB);
    expect(listed).not.toContain(ledgerB);
    expect((await get(`${L}?tenant_id=${tenantB}`, adminA)).status).toBe(404);
    const asB = await post(L, adminA, { ledger_id: uniqueId("x"), subject: { tenant_id: tenantB } });
    expect(asB.status).toBe(404);
    // B's ledger id is taken: a conflict that says nothing about B.
    const taken = await post(L, adminA, { ledger_id: ledgerB });
    expect(taken.status).toBe(409);
    expect(await taken.text()).not.toContain(tenantB);
    // B's ledger is untouched, and B still reads it.
    expect(await credits.balance(ledgerB, "2026-03-30T00:00:00Z")).toEqual(before);
    expect(await credits.highWatermark(ledgerB)).toBeUndefined();
    expect(await credits.listGrants(ledgerB)).toHaveLength(1);
    const mine = await json<{ features: Array<{ balance: string }> }>(
      await get(`${L}/${ledgerB}/balance?at=2026-03-30T00:00:00Z`, adminB),
      200,
    );
    expect(mine.features[0]?.balance).toBe("5000");
  });

  it("answers 403 problem+json for a key without the route's credit scope", async () => {
    const ledgerId = await newLedger(adminA);
    const reads = [L, `${L}/${ledgerId}`, `${L}/${ledgerId}/grants`, `${L}/${ledgerId}/balance`];
    reads.push(`${L}/${ledgerId}/history?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z`);
    const writes: Array<[string, unknown]> = [
      [L, { ledger_id: uniqueId("l") }],
      [
        `${L}/${ledgerId}/grants`,
        { grant_id: uniqueId("g"), feature_id: "tokens", amount: "1", effective_at: NOW },
      ],
      [`${L}/${ledgerId}/grants/g/void`, { at: NOW }],
      [`${L}/${ledgerId}/reset`, { at: NOW }],
    ];
    const check = async (response: Response, scope: string) => {
      expect(response.status).toBe(403);
      expect(response.headers.get("www-authenticate")).toContain(`scope="${scope}"`);
      expect(((await response.json()) as { type: string }).type).toBe("urn:latch:problem:insufficient_scope");
    };
    for (const path of reads) {
      await check(await get(path, writerA), "credits:read");
      await check(await get(path, billingOnlyA), "credits:read");
      expect((await get(path, readerA)).status, path).toBe(200);
    }
    for (const [path, body] of writes) {
      await check(await post(path, readerA, body), "credits:write");
      await check(await post(path, billingOnlyA, body), "credits:write");
    }
    // Nothing was written by the refused requests.
    expect(await credits.listGrants(ledgerId)).toEqual([]);
    expect(await credits.highWatermark(ledgerId)).toBeUndefined();
    expect((await get(L, adminA, base)).status).toBe(200);
  });

  it("answers 400 problem+json naming the field for bad input", async () => {
    const ledgerId = await newLedger(adminA);
    const grant = (extra: Record<string, unknown>) =>
      post(`${L}/${ledgerId}/grants`, adminA, {
        grant_id: uniqueId("g"),
        feature_id: "tokens",
        amount: "10",
        effective_at: "2026-03-01T00:00:00Z",
        ...extra,
      });
    await expectBadInput(await grant({ amount: "-5" }), "amount");
    await expectBadInput(await grant({ amount: "0" }), "amount");
    await expectBadInput(await grant({ amount: 5 }), "amount");
    await expectBadInput(await grant({ amount: "1e3" }), "amount");
    await expectBadInput(await grant({ priority: 0 }), "priority");
    await expectBadInput(await grant({ priority: 256 }), "priority");
    await expectBadInput(await grant({ effective_at: "yesterday" }), "effective_at");
    await expectBadInput(await grant({ effective_at: "2026-02-30T00:00:00Z" }), "effective_at");
    await expectBadInput(await grant({ expiration: { count: 0, unit: "DAY" } }), "expiration.count");
    await expectBadInput(await grant({ expiration: { count: 1, unit: "FORTNIGHT" } }), "expiration.unit");
    await expectBadInput(
      await grant({ rollover: { type: "REMAINING_AMOUNT", max_amount: "-1" } }),
      "rollover.max_amount",
    );
    await expectBadInput(await grant({ colour: "red" }), "colour");
    // Refused by the ledger itself (no such feature), named as on the wire.
    await expectBadInput(await grant({ feature_id: uniqueId("no-feature") }), "feature_id");
    await expectBadInput(await post(`${L}/${ledgerId}/grants`, adminA, "{not json"), "(body)");

    await expectBadInput(await post(L, adminA, { ledger_id: "" }), "ledger_id");
    await expectBadInput(
      await post(L, adminA, { ledger_id: uniqueId("l"), time_zone: "Mars/Olympus" }),
      "time_zone",
    );
    await expectBadInput(await post(`${L}/${ledgerId}/reset`, adminA, { at: "soon" }), "at");
    await expectBadInput(await post(`${L}/${ledgerId}/reset`, adminA, {}), "at");
    await expectBadInput(
      await post(`${L}/${ledgerId}/grants/g/void`, adminA, { at: "2026-13-01T00:00:00Z" }),
      "at",
    );
    await expectBadInput(await get(`${L}/${ledgerId}/balance?at=tomorrow`, adminA), "at");
    const window = "from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z";
    await expectBadInput(await get(`${L}/${ledgerId}/history?from=2026-03-01T00:00:00Z`, adminA), "to");
    await expectBadInput(
      await get(`${L}/${ledgerId}/history?from=2026-04-01T00:00:00Z&to=2026-03-01T00:00:00Z`, adminA),
      "to",
    );
    await expectBadInput(await get(`${L}/${ledgerId}/history?${window}&page_size=0`, adminA), "page_size");
    await expectBadInput(await get(`${L}/${ledgerId}/history?${window}&page_size=5000`, adminA), "page_size");
    // A forged cursor is refused by the ledger, named as the query parameter.
    await expectBadInput(await get(`${L}/${ledgerId}/history?${window}&cursor=forged`, adminA), "cursor");
    await expectBadInput(await get(`${L}?page_size=ten`, adminA), "page_size");
    await expectBadInput(await get(`${L}?page_size=1001`, adminA), "page_size");
    // The listing's cursor is opaque: one the ledger did not return is refused by it.
    await expectBadInput(await get(`${L}?cursor=forged`, adminA), "cursor");
    await expectBadInput(await get(`${L}?cursor=${ledgerId}`, adminA), "cursor");
    // Nothing was written by a refused request.
    expect(await credits.listGrants(ledgerId)).toEqual([]);
  });
});
