import { PGlite } from "@electric-sql/pglite";
import { ApiKeys, linesToCsv, type RatedUsageRecord, sumDecimals, summarize } from "@latch/core";
import { type ApiKeyStore, parseApiKey } from "@latch/core/adapter";
import { apiKeyAuth, createBillingApp, keyQuota, requireScope } from "@latch/http";
import {
  fromPglite,
  migrate,
  PostgresApiKeyStore,
  PostgresQuota,
  PostgresRatedRecordStore,
} from "@latch/postgres";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import { Validator } from "@seriousme/openapi-schema-validator";
import { parse as parseCsv } from "csv-parse/sync";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { listen, pooled } from "./support.js";

// The stores run on PGlite (PostgreSQL in process, the same SQL as on a server): a shared
// server would see this file's load, and @latch/postgres's change-log tests (which hold back
// versions while any transaction on the server is open) must not.
const schema = "latch";
const pglite = new PGlite();
const db = fromPglite(pglite);
const SECRET = "http-test-secret-http-test-secret-0123456789";
const FROM = "2026-03-01T00:00:00Z";
const TO = "2026-03-04T00:00:00Z";
const ALL_SCOPES = ["keys:read", "keys:write", "usage:read", "billing:read", "gateway:invoke"];

// The store as the app sees it, counting digest lookups (the spy of the must-shows).
let lookups = 0;
const inner = new PostgresApiKeyStore(db, { schema });
const spied: ApiKeyStore = {
  insert: (...a) => inner.insert(...a),
  findByDigest: (...a) => {
    lookups += 1;
    return inner.findByDigest(...a);
  },
  get: (...a) => inner.get(...a),
  list: (...a) => inner.list(...a),
  revoke: (...a) => inner.revoke(...a),
  touch: (...a) => inner.touch(...a),
};
let now = Date.parse("2026-03-10T00:00:00Z");
const quota = new PostgresQuota(db, { schema });
const keys = new ApiKeys({ store: spied, secret: SECRET, quota, clock: () => now });
const records = new PostgresRatedRecordStore(db, { schema });
const issued: string[] = []; // every plaintext key of this run, for the no-plaintext scan

const tenantA = uniqueId("tenant-a");
const tenantB = uniqueId("tenant-b");
const ofA: RatedUsageRecord[] = [];

async function issue(
  tenantId: string,
  scopes: string[],
  extra: Partial<Parameters<ApiKeys["create"]>[0]> = {},
) {
  const created = await keys.create({ owner: { tenantId }, name: "test", scopes, ...extra });
  issued.push(created.plaintext);
  return created;
}

let base = "";
let close: (() => Promise<void>) | undefined;
let adminA = "";
let adminB = "";
let adminBId = "";

// Connect, migrate, seed and listen once; every test awaits it, so a missing server fails every test.
let ready: Promise<void> | undefined;
beforeEach(async () => {
  ready ??= (async () => {
    await migrate(db, { schema });
    const models = ["gpt-4o", "gpt-4o-mini"];
    const providers = ["openai", "azure"];
    const batch: RatedUsageRecord[] = [];
    for (let i = 0; i < 612; i++) {
      const day = 1 + (i % 3);
      const second = String(i % 60).padStart(2, "0");
      const minute = String(Math.floor(i / 60) % 60).padStart(2, "0");
      const record = makeRatedRecord({
        observation: {
          eventId: `${tenantA}-${String(i).padStart(4, "0")}:0:${providers[i % 2]}`,
          subject: { tenantId: tenantA, apiKeyId: i % 3 === 0 ? "key-x" : "key-y" },
          model: { billableModel: models[i % 2 === 0 ? 0 : 1] as string },
          provider: { providerId: providers[Math.floor(i / 2) % 2] as string },
          meters: { input_tokens: 100 + i, cached_input_tokens: i % 7, output_tokens: 10 + (i % 13) },
          outcome: i % 10 === 0 ? { kind: "error", code: "rate_limited" } : { kind: "success" },
          timing: {
            startedAt: `2026-03-0${day}T10:${minute}:${second}Z`,
            completedAt: `2026-03-0${day}T10:${minute}:${second}.5Z`,
          },
        },
      });
      batch.push(record);
      ofA.push(record);
    }
    for (let i = 0; i < 40; i++) {
      batch.push(
        makeRatedRecord({
          observation: {
            eventId: `${tenantB}-${i}:0:openai`,
            subject: { tenantId: tenantB },
            timing: {
              startedAt: "2026-03-02T09:00:00Z",
              completedAt: `2026-03-02T09:00:${String(i).padStart(2, "0")}Z`,
            },
          },
        }),
      );
    }
    await records.putMany(batch);
    adminA = (await issue(tenantA, ALL_SCOPES)).plaintext;
    const b = await issue(tenantB, ALL_SCOPES);
    adminB = b.plaintext;
    adminBId = b.key.id;

    const app = createBillingApp({ keys, records, exportPageSize: 97 });
    // A gateway route beside the billing API: the same Bearer keys, scopes and per-key quota.
    app.use("/v1/*", apiKeyAuth(keys));
    app.post("/v1/generate", requireScope("gateway:invoke"), keyQuota({ keys, estimate: () => 1 }), (c) =>
      c.json({ ok: true }),
    );
    const server = await listen(app);
    base = server.url;
    close = server.close;
  })();
  await ready;
}, 120_000);

afterAll(async () => {
  await close?.();
  await keys.flush();
  await pglite.close();
});

const get = (path: string, key?: string) =>
  fetch(`${base}${path}`, { headers: key === undefined ? {} : { authorization: `Bearer ${key}` } });
const send = (method: string, path: string, key: string, body?: unknown) =>
  fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
const window = `from=${FROM}&to=${TO}`;

/** Asserts a 400 problem naming `field`. */
async function expectBadInput(response: Response, field: string): Promise<void> {
  expect(response.status).toBe(400);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = (await response.json()) as {
    type: string;
    detail: string;
    "invalid-params": Array<{ name: string }>;
  };
  expect(problem.type).toBe("urn:latch:problem:invalid_input");
  expect(problem["invalid-params"].map((p) => p.name)).toContain(field);
  expect(problem.detail).toContain(field);
}

describe("billing API over HTTP (a loopback server; Postgres stores on PGlite)", () => {
  it("serves an OpenAPI 3.1 document that an OpenAPI validator accepts, covering every route", async () => {
    const response = await get("/openapi.json");
    expect(response.status).toBe(200);
    const document = (await response.json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(document.openapi).toBe("3.1.0");
    const result = await new Validator().validate(document as never);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    const operations = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`),
    );
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
      ].sort(),
    );
  });

  it("issues a key once, lists keys across pages without secrets, reads one and revokes it", async () => {
    const tenant = uniqueId("tenant-k");
    const admin = (await issue(tenant, ALL_SCOPES)).plaintext;
    const created = await send("POST", "/api/billing/keys", admin, {
      name: "ci",
      scopes: ["billing:read"],
      quota: { unit: "tokens", limit: 1000 },
      expires_at: "2027-01-01T00:00:00Z",
    });
    expect(created.status).toBe(201);
    expect(created.headers.get("cache-control")).toBe("no-store");
    const body = (await created.json()) as {
      key: { id: string; owner: object; quota: object };
      secret: string;
    };
    issued.push(body.secret);
    expect(parseApiKey(body.secret)?.mode).toBe("live");
    expect(body.key).toMatchObject({
      owner: { tenant_id: tenant },
      scopes: ["billing:read"],
      quota: { unit: "tokens", limit: 1000 },
      expires_at: "2027-01-01T00:00:00.000Z",
    });
    for (let i = 0; i < 11; i++) {
      const r = await send("POST", "/api/billing/keys", admin, { name: `k${i}`, scopes: [], mode: "test" });
      issued.push(((await r.json()) as { secret: string }).secret);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await get(
        `/api/billing/keys?limit=5${cursor === undefined ? "" : `&cursor=${cursor}`}`,
        admin,
      );
      expect(r.status).toBe(200);
      const text = await r.text();
      expect(text).not.toContain("secret");
      for (const plaintext of issued) expect(text).not.toContain(plaintext);
      const page = JSON.parse(text) as { items: Array<{ id: string }>; next_cursor?: string };
      expect(page.items.length).toBeLessThanOrEqual(5);
      seen.push(...page.items.map((k) => k.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== undefined);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(13); // the admin key, the ci key and 11 more
    expect(new Set(seen).size).toBe(13);
    expect(seen).toContain(body.key.id);

    expect((await get(`/api/billing/keys/${body.key.id}`, admin)).status).toBe(200);
    expect((await get(`/billing/summary?${window}`, body.secret)).status).toBe(200);
    const revoked = await send("DELETE", `/api/billing/keys/${body.key.id}`, admin);
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { revoked_at?: string }).revoked_at).toBe("2026-03-10T00:00:00.000Z");
    expect((await send("DELETE", `/api/billing/keys/${body.key.id}`, admin)).status).toBe(200); // idempotent
  });

  it("answers 401 for a missing, revoked or expired key", async () => {
    expect((await get(`/billing/summary?${window}`)).status).toBe(401);
    const revoked = await issue(tenantA, ALL_SCOPES);
    expect((await get(`/billing/summary?${window}`, revoked.plaintext)).status).toBe(200);
    await keys.revoke({ tenantId: tenantA }, revoked.key.id);
    const r = await get(`/billing/summary?${window}`, revoked.plaintext);
    expect(r.status).toBe(401);
    expect(r.headers.get("content-type")).toBe("application/problem+json");
    expect(r.headers.get("www-authenticate")).toContain("Bearer");

    const expiring = await issue(tenantA, ALL_SCOPES, { expiresAt: new Date(now + 60_000).toISOString() });
    expect((await get(`/api/billing/keys`, expiring.plaintext)).status).toBe(200);
    now += 60_000;
    try {
      expect((await get(`/api/billing/keys`, expiring.plaintext)).status).toBe(401);
    } finally {
      now -= 60_000;
    }
  });

  it("answers 404 and leaks nothing when tenant A's key asks for tenant B's usage or keys", async () => {
    const b = await issue(tenantB, ["billing:read"]);
    for (const path of [
      `/api/billing/usage?${window}&tenant_id=${tenantB}`,
      `/api/billing/usage?${window}&key_id=${b.key.id}`,
      `/api/billing/keys?tenant_id=${tenantB}`,
      `/api/billing/keys/${b.key.id}`,
      `/billing/summary?${window}&tenant_id=${tenantB}`,
      `/billing/lines?${window}&tenant_id=${tenantB}`,
      `/billing/export?${window}&tenant_id=${tenantB}`,
    ]) {
      const r = await get(path, adminA);
      expect(r.status, path).toBe(404);
      const text = await r.text();
      expect(text).not.toContain(tenantB);
      expect(text).not.toContain(b.key.id);
    }
    const del = await send("DELETE", `/api/billing/keys/${b.key.id}`, adminA);
    expect(del.status).toBe(404);
    expect((await get(`/billing/summary?${window}`, b.plaintext)).status).toBe(200); // B's key still works
    // A's own listing and reports hold nothing of B.
    const own = await (await get(`/api/billing/keys?limit=1000`, adminA)).text();
    expect(own).not.toContain(b.key.id);
    expect(own).not.toContain(adminBId);
    const lines = await (await get(`/billing/export?${window}&format=jsonl`, adminA)).text();
    expect(lines).not.toContain(tenantB);
    // And B sees only B: 40 requests.
    const summaryB = (await (await get(`/billing/summary?${window}`, adminB)).json()) as {
      totals: { requests: number };
    };
    expect(summaryB.totals.requests).toBe(40);
  });

  it("answers 403 for a key without the needed scope, and never lets a key grant scopes it lacks", async () => {
    const reader = (await issue(tenantA, ["usage:read"])).plaintext;
    expect((await get(`/api/billing/usage?${window}`, reader)).status).toBe(200);
    for (const path of [
      `/billing/summary?${window}`,
      `/billing/lines?${window}`,
      `/billing/export?${window}`,
      "/api/billing/keys",
    ]) {
      const r = await get(path, reader);
      expect(r.status, path).toBe(403);
      expect(((await r.json()) as { type: string }).type).toBe("urn:latch:problem:insufficient_scope");
    }
    expect((await send("POST", "/api/billing/keys", reader, { name: "x", scopes: [] })).status).toBe(403);
    const writer = (await issue(tenantA, ["keys:write"])).plaintext;
    const escalate = await send("POST", "/api/billing/keys", writer, { name: "x", scopes: ["billing:read"] });
    expect(escalate.status).toBe(403);
  });

  it("answers 401 for a mistyped key without touching the store", async () => {
    const before = lookups;
    const last = adminA.at(-1) === "a" ? "b" : "a";
    const mistyped = adminA.slice(0, -1) + last;
    const r = await get(`/billing/summary?${window}`, mistyped);
    expect(r.status).toBe(401);
    expect(lookups).toBe(before);
    expect((await get(`/billing/summary?${window}`, adminA)).status).toBe(200);
    expect(lookups).toBe(before + 1);
  });

  it("answers 401 to 10,000 requests with random keys, with no store lookup for any of them", async () => {
    const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    // Deterministic (mulberry32), so the run is reproducible: none of these passes the checksum.
    let state = 20_260_310;
    const random = () => {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const randomKey = (i: number) => {
      let tail = "";
      for (let j = 0; j < 38; j++) tail += alphabet[Math.floor(random() * 62)];
      return `latch_${i % 2 === 0 ? "live" : "test"}_${tail}`;
    };
    const candidates = Array.from({ length: 10_000 }, (_, i) => randomKey(i));
    expect(candidates.filter((k) => parseApiKey(k) !== undefined)).toEqual([]);
    const before = lookups;
    const statuses = await pooled(candidates.length, 64, async (i) => {
      const r = await get(`/api/billing/usage?${window}`, candidates[i]);
      await r.body?.cancel();
      return r.status;
    });
    expect(statuses.filter((s) => s === 401)).toHaveLength(10_000);
    expect(lookups).toBe(before);
  });

  it("serves exactly 500 of 1,000 concurrent requests against a key with a quota for 500", async () => {
    const { key, plaintext } = await issue(tenantA, ["gateway:invoke", "usage:read"], {
      quota: { unit: "tokens", limit: 500 },
    });
    const statuses = await Promise.all(
      Array.from({ length: 1_000 }, async () => {
        const r = await send("POST", "/v1/generate", plaintext, {});
        await r.body?.cancel();
        return r.status;
      }),
    );
    expect(statuses.filter((s) => s === 200)).toHaveLength(500);
    expect(statuses.filter((s) => s === 429)).toHaveLength(500);
    const usage = (await (await get(`/api/billing/usage?${window}&key_id=${key.id}`, plaintext)).json()) as {
      quota: object;
    };
    expect(usage.quota).toEqual({ unit: "tokens", limit: 500, spent: 500, held: 0, available: 0 });
  });

  it("answers 400 problem+json naming the field for bad input", async () => {
    await expectBadInput(await get(`/billing/summary?from=yesterday&to=${TO}`, adminA), "from");
    await expectBadInput(await get(`/billing/summary?from=${FROM}&to=2026-02-30T00:00:00Z`, adminA), "to");
    await expectBadInput(await get(`/billing/summary?from=${TO}&to=${FROM}`, adminA), "to");
    await expectBadInput(await get(`/billing/summary?${window}&group_by=colour`, adminA), "group_by");
    await expectBadInput(await get(`/billing/summary?${window}&group_by=model,model`, adminA), "group_by");
    await expectBadInput(await get(`/billing/lines?${window}&page_size=5000`, adminA), "page_size");
    await expectBadInput(await get(`/billing/lines?${window}&page_size=ten`, adminA), "page_size");
    await expectBadInput(await get(`/billing/lines?${window}&cursor=forged`, adminA), "cursor");
    await expectBadInput(await get(`/billing/export?${window}&format=xml`, adminA), "format");
    await expectBadInput(await get(`/billing/lines?${window}&colour=red`, adminA), "colour");
    await expectBadInput(await get(`/api/billing/usage?from=${FROM}`, adminA), "to");
    await expectBadInput(await get(`/api/billing/keys?limit=0`, adminA), "limit");
    await expectBadInput(
      await send("POST", "/api/billing/keys", adminA, {
        name: "q",
        scopes: [],
        quota: { unit: "tokens", limit: "lots" },
      }),
      "quota.limit",
    );
    await expectBadInput(
      await send("POST", "/api/billing/keys", adminA, {
        name: "q",
        scopes: [],
        quota: { unit: "money", currency: "USD", limit: 5 },
      }),
      "quota.limit",
    );
    await expectBadInput(await send("POST", "/api/billing/keys", adminA, { scopes: [] }), "name");
    await expectBadInput(await send("POST", "/api/billing/keys", adminA, "{not json"), "(body)");
    await expectBadInput(
      await send("POST", "/api/billing/keys", adminA, {
        name: "q",
        scopes: [],
        expires_at: "2020-01-01T00:00:00Z",
      }),
      "expires_at",
    );
  });

  it("summarises by provider, model and day with the totals of the reference summarize", async () => {
    const r = await get(`/billing/summary?${window}&group_by=provider,model,day`, adminA);
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      group_by: string[];
      totals: Record<string, unknown>;
      breakdown: Array<{
        group: Record<string, string>;
        requests: number;
        total_tokens: number;
        cost_by_currency: Record<string, string>;
      }>;
    };
    expect(body.group_by).toEqual(["provider", "model", "day"]);
    const query = { start: FROM, end: TO, filters: { tenantId: tenantA } };
    const [total] = summarize(ofA, { ...query, groupBy: [] });
    const rows = summarize(ofA, { ...query, groupBy: ["provider", "model", "day"] });
    expect(body.totals).toEqual({
      input_tokens: total?.inputTokens,
      output_tokens: total?.outputTokens,
      cache_read_tokens: total?.cacheReadTokens,
      cache_write_tokens: total?.cacheWriteTokens,
      total_tokens: total?.totalTokens,
      requests: 612,
      successes: 612 - 62,
      failures: 62,
      cost_by_currency: total?.costByCurrency,
    });
    expect(body.breakdown.map((b) => [b.group, b.requests, b.total_tokens, b.cost_by_currency])).toEqual(
      rows.map((row) => [row.group, row.requests, row.totalTokens, row.costByCurrency]),
    );
    expect(body.breakdown).toHaveLength(2 * 2 * 3);
  });

  it("pages through every line of the window exactly once, 25 at a time", async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const r = await get(
        `/billing/lines?${window}&page_size=25${cursor === undefined ? "" : `&cursor=${cursor}`}`,
        adminA,
      );
      expect(r.status).toBe(200);
      const page = (await r.json()) as {
        page_size: number;
        items: Array<{ event_id: string; tenant_id: string }>;
        next_cursor?: string;
      };
      expect(page.page_size).toBe(25);
      expect(page.items.length).toBeLessThanOrEqual(25);
      for (const item of page.items) expect(item.tenant_id).toBe(tenantA);
      seen.push(...page.items.map((i) => i.event_id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== undefined);
    expect(pages).toBe(25); // 612 lines: 24 full pages and one of 12
    expect(seen).toHaveLength(612);
    expect(new Set(seen).size).toBe(612);
    const expected = [...ofA]
      .sort((a, b) =>
        a.observation.timing.completedAt === b.observation.timing.completedAt
          ? a.eventId < b.eventId
            ? -1
            : 1
          : Date.parse(a.observation.timing.completedAt) - Date.parse(b.observation.timing.completedAt),
      )
      .map((r) => r.eventId);
    expect(seen).toEqual(expected);
  });

  it("streams a CSV export that a CSV parser reads back to the summary's totals, and the same as JSONL", async () => {
    const r = await get(`/billing/export?${window}`, adminA);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/csv");
    const text = await r.text();
    expect(text).toBe(
      linesToCsv(
        (await records.lines({ start: FROM, end: TO, filters: { tenantId: tenantA }, limit: 10_000 })).items,
      ),
    );
    const rows = parseCsv(text, { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;
    expect(rows).toHaveLength(612);
    const summary = (await (await get(`/billing/summary?${window}`, adminA)).json()) as {
      totals: {
        input_tokens: number;
        cache_read_tokens: number;
        output_tokens: number;
        requests: number;
        cost_by_currency: Record<string, string>;
      };
    };
    const sum = (column: string) => rows.reduce((acc, row) => acc + Number(row[column]), 0);
    expect(sum("input_tokens")).toBe(summary.totals.input_tokens);
    expect(sum("cached_input_tokens")).toBe(summary.totals.cache_read_tokens);
    expect(sum("output_tokens") + sum("reasoning_tokens")).toBe(summary.totals.output_tokens);
    expect(rows.length).toBe(summary.totals.requests);
    expect(new Set(rows.map((row) => row.currency))).toEqual(new Set(["USD"]));
    expect(sumDecimals(rows.map((row) => row.cost as string))).toBe(summary.totals.cost_by_currency.USD);

    const jsonl = await get(`/billing/export?${window}&format=jsonl`, adminA);
    expect(jsonl.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = (await jsonl.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { event_id: string; cost: string });
    expect(lines.map((l) => l.event_id)).toEqual(rows.map((row) => row.event_id));
    expect(sumDecimals(lines.map((l) => l.cost))).toBe(summary.totals.cost_by_currency.USD);
  });

  it("reports usage per API key, and one key's usage", async () => {
    const r = await get(`/api/billing/usage?${window}`, adminA);
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      tenant_id: string;
      totals: { requests: number };
      by_key: Array<{ api_key_id: string; requests: number }>;
    };
    expect(body.tenant_id).toBe(tenantA);
    expect(body.totals.requests).toBe(612);
    expect(body.by_key.map((k) => [k.api_key_id, k.requests])).toEqual([
      ["key-x", 204],
      ["key-y", 408],
    ]);
  });

  it("writes lastUsedAt after use, and the key table holds neither a plaintext key nor its body in any column", async () => {
    await keys.flush();
    const listed = (await (await get(`/api/billing/keys?limit=1000`, adminA)).json()) as {
      items: Array<{ last_used_at?: string }>;
    };
    expect(listed.items.some((k) => k.last_used_at === "2026-03-10T00:00:00.000Z")).toBe(true);
    // Raw SQL over every column of every row (the row cast to text).
    const { rows } = await db.query(`SELECT k::text AS row FROM "${schema}".api_keys k`);
    const dump = (rows as Array<{ row: string }>).map((row) => row.row).join("\n");
    expect(rows.length).toBeGreaterThan(10);
    expect(issued.length).toBeGreaterThan(10);
    for (const plaintext of issued) {
      expect(dump).not.toContain(plaintext);
      expect(dump).not.toContain(parseApiKey(plaintext)?.body as string);
    }
  });
});
