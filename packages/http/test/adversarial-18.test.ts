import { randomBytes } from "node:crypto";
import { request as httpRequest } from "node:http";
import { connect } from "node:net";
import { crc32, gzipSync } from "node:zlib";
import {
  ApiKeys,
  MemoryApiKeyStore,
  MemoryCreditLedger,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  type RatedUsageRecord,
} from "@latch/core";
import { type ApiKeyStore, apiKeyQuotaAccount, parseApiKey } from "@latch/core/adapter";
import { csvCell, csvCellValue } from "@latch/core/export";
import { createBillingApp, peerClient } from "@latch/http";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import { parse as parseCsv } from "csv-parse/sync";
import { describe, expect, it } from "vitest";
import { listen } from "./support.js";

// Adversarial review of issue 18 (least-privilege keys, test-mode isolation, the edge): what an
// attacker holding one valid key tries, on the memory stores. The same attacks on PostgreSQL
// (a real server) are in adversarial-18-postgres.test.ts.

const SECRET = "adversarial-18-secret-adversarial-18-secret-01";
const NOW = Date.parse("2026-03-10T00:00:00Z");
const FROM = "2026-03-01T00:00:00Z";
const TO = "2026-03-02T00:00:00Z";
const WINDOW = `from=${FROM}&to=${TO}`;
const ALL = ["keys:read", "keys:write", "usage:read", "billing:read", "credits:read", "credits:write"];
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A made-up key with a valid checksum, never issued. */
function madeUpKey(): string {
  let head = "latch_live_";
  for (const byte of randomBytes(32)) head += BASE62[byte % 62];
  let n = crc32(head);
  let sum = "";
  for (let i = 0; i < 6; i++) {
    sum = BASE62[n % 62] + sum;
    n = Math.floor(n / 62);
  }
  const key = head + sum;
  if (parseApiKey(key) === undefined) throw new Error("the made-up key should pass the checksum");
  return key;
}

function recordsOf(tenantId: string, count: number, prefix = tenantId): RatedUsageRecord[] {
  return Array.from({ length: count }, (_, i) =>
    makeRatedRecord({
      observation: {
        eventId: `${prefix}-${String(i).padStart(4, "0")}:0:openai`,
        subject: { tenantId },
        timing: {
          startedAt: "2026-03-01T10:00:00Z",
          completedAt: `2026-03-01T10:${String(Math.floor(i / 60)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}Z`,
        },
      },
    }),
  );
}

/** A fresh app on memory stores, with a counting key store and a settable clock. */
async function setup(options: Partial<Parameters<typeof createBillingApp>[0]> = {}) {
  const inner = new MemoryApiKeyStore();
  let lookups = 0;
  const store: ApiKeyStore = {
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
  let now = NOW;
  const keys = new ApiKeys({ store, secret: SECRET, quota: new MemoryQuotaReservator(), clock: () => now });
  const records = new MemoryRatedRecordStore();
  const credits = new MemoryCreditLedger({ clock: () => now });
  const tenant = uniqueId("adv");
  const admin = await keys.create({ owner: { tenantId: tenant }, name: "admin", scopes: ALL });
  const app = createBillingApp({
    keys,
    records,
    credits,
    clock: () => now,
    onError: () => undefined,
    ...options,
  });
  async function call(key: string, method: string, path: string, body?: unknown, env?: unknown) {
    const init: RequestInit = {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
    };
    const response = await app.fetch(new Request(`http://localhost${path}`, init), env);
    const text = await response.text();
    const type = response.headers.get("content-type") ?? "";
    return {
      status: response.status,
      headers: response.headers,
      text,
      json: /json/.test(type) && text !== "" ? JSON.parse(text) : undefined,
    };
  }
  const mint = (minter: string, body: object) =>
    call(minter, "POST", "/api/billing/keys", { name: "minted", scopes: [], ...body });
  return {
    app,
    keys,
    records,
    credits,
    tenant,
    admin,
    call,
    mint,
    lookups: () => lookups,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

type Reply = Awaited<ReturnType<Awaited<ReturnType<typeof setup>>["call"]>>;

function refused(r: Reply, field: string): void {
  expect(r.status, r.text).toBe(403);
  expect(r.json.type).toBe("urn:latch:problem:privilege_exceeded");
  expect(r.json["invalid-params"][0].name).toBe(field);
}

function invalid(r: Reply): void {
  expect(r.status, r.text).toBe(400);
  expect(r.json.type).toBe("urn:latch:problem:invalid_input");
}

describe("minting: body variations never widen a key (memory)", () => {
  it("scopes: case, look-alike unicode, padding, wildcards and duplicates are refused, never granted", async () => {
    const s = await setup();
    const writer = (await s.keys.create({ owner: { tenantId: s.tenant }, name: "w", scopes: ["keys:write"] }))
      .plaintext;
    for (const scopes of [["KEYS:WRITE"], ["keys:wrіte"], ["keys:write "], ["Billing:read"]]) {
      invalid(await s.mint(writer, { scopes }));
    }
    // Valid spellings that the caller lacks: a wildcard, a prefix, a longer scope.
    for (const scope of ["keys:*", "keys", "keys:write:all", "billing:read"]) {
      refused(await s.mint(writer, { scopes: ["keys:write", scope] }), "scopes.1");
    }
    invalid(await s.mint(writer, { scopes: ["keys:write", "keys:write"] }));
    // A JSON body naming `scopes` twice: the last wins, and it is the one checked.
    const twice = await s.call(
      writer,
      "POST",
      "/api/billing/keys",
      '{"name":"x","scopes":["keys:write"],"scopes":["keys:write","billing:read"]}',
    );
    refused(twice, "scopes.1");
    // Prototype keys are unknown fields, not owner or scope overrides.
    const proto = await s.call(
      writer,
      "POST",
      "/api/billing/keys",
      '{"name":"x","scopes":[],"__proto__":{"scopes":["billing:read"]},"constructor":{"prototype":{"mode":"live"}}}',
    );
    invalid(proto);
  });

  it("quota: another unit, another currency, a lower-case currency, excess decimals or a larger limit", async () => {
    const s = await setup();
    const owner = { tenantId: s.tenant };
    const tokens = (
      await s.keys.create({ owner, name: "t", scopes: ["keys:write"], quota: { unit: "tokens", limit: 10 } })
    ).plaintext;
    refused(await s.mint(tokens, {}), "quota");
    refused(
      await s.mint(tokens, { quota: { unit: "money", currency: "USD", limit: "0.000001" } }),
      "quota.unit",
    );
    refused(await s.mint(tokens, { quota: { unit: "tokens", limit: 11 } }), "quota.limit");
    invalid(await s.mint(tokens, { quota: { unit: "tokens", limit: 10.5 } }));
    invalid(await s.mint(tokens, { quota: { unit: "tokens", limit: -1 } }));
    invalid(await s.mint(tokens, { quota: { unit: "tokens", limit: "10" } }));
    invalid(await s.mint(tokens, { quota: null }));
    expect((await s.mint(tokens, { quota: { unit: "tokens", limit: 10 } })).status).toBe(201);

    const money = (
      await s.keys.create({
        owner,
        name: "m",
        scopes: ["keys:write"],
        quota: { unit: "money", currency: "USD", limit: "1.5" },
      })
    ).plaintext;
    refused(await s.mint(money, { quota: { unit: "money", currency: "EUR", limit: "1" } }), "quota.currency");
    invalid(await s.mint(money, { quota: { unit: "money", currency: "usd", limit: "1" } }));
    invalid(await s.mint(money, { quota: { unit: "money", currency: "USD", limit: "1.5000001" } }));
    invalid(await s.mint(money, { quota: { unit: "money", currency: "USD", limit: "1e3" } }));
    invalid(await s.mint(money, { quota: { unit: "money", currency: "USD", limit: 1 } }));
    refused(
      await s.mint(money, { quota: { unit: "money", currency: "USD", limit: "1.500001" } }),
      "quota.limit",
    );
    refused(await s.mint(money, { quota: { unit: "tokens", limit: 1 } }), "quota.unit");
    expect(
      (await s.mint(money, { quota: { unit: "money", currency: "USD", limit: "1.500000" } })).status,
    ).toBe(201);
  });

  it("quota: a key that spent its quota cannot mint a fresh one; its minted keys never hold more than it had", async () => {
    const s = await setup();
    const owner = { tenantId: s.tenant };
    const quota = s.keys.quota as MemoryQuotaReservator;
    const parent = await s.keys.create({
      owner,
      name: "budget",
      scopes: ["keys:write"],
      quota: { unit: "tokens", limit: 10 },
    });
    // It spends 7 of its 10 tokens.
    await quota.reserve({
      holdId: "spend",
      account: apiKeyQuotaAccount(parent.key.id),
      amount: 7,
      ttlMs: 60_000,
    });
    await quota.commit("spend", 7);
    refused(await s.mint(parent.plaintext, { quota: { unit: "tokens", limit: 10 } }), "quota.limit");
    refused(await s.mint(parent.plaintext, { quota: { unit: "tokens", limit: 4 } }), "quota.limit");
    const given = [];
    for (let i = 0; i < 5; i++)
      given.push((await s.mint(parent.plaintext, { quota: { unit: "tokens", limit: 1 } })).status);
    expect(given).toEqual([201, 201, 201, 403, 403]);
    expect(await s.keys.quotaBalance(parent.key)).toMatchObject({ available: 0 });
    // A zero quota gives nothing away, and a chain cannot multiply it either.
    expect((await s.mint(parent.plaintext, { quota: { unit: "tokens", limit: 0 } })).status).toBe(201);
    const money = await s.keys.create({
      owner,
      name: "usd",
      scopes: ["keys:write"],
      quota: { unit: "money", currency: "USD", limit: "1" },
    });
    const child = await s.mint(money.plaintext, {
      scopes: ["keys:write"],
      quota: { unit: "money", currency: "USD", limit: "0.6" },
    });
    expect(child.status, child.text).toBe(201);
    refused(
      await s.mint(money.plaintext, { quota: { unit: "money", currency: "USD", limit: "0.400001" } }),
      "quota.limit",
    );
    const grandchild = await s.mint(child.json.secret, {
      quota: { unit: "money", currency: "USD", limit: "0.6" },
    });
    expect(grandchild.status).toBe(201);
    refused(
      await s.mint(child.json.secret, { quota: { unit: "money", currency: "USD", limit: "0.000001" } }),
      "quota.limit",
    );
  });

  it("expires_at: omitted, far future, offsets, other formats and a millisecond later", async () => {
    const s = await setup();
    const short = (
      await s.keys.create({
        owner: { tenantId: s.tenant },
        name: "short",
        scopes: ["keys:write"],
        expiresAt: "2026-03-10T01:00:00Z",
      })
    ).plaintext;
    refused(await s.mint(short, {}), "expires_at");
    refused(await s.mint(short, { expires_at: "9999-12-31T23:59:59Z" }), "expires_at");
    refused(await s.mint(short, { expires_at: "2026-03-10T01:00:00.001Z" }), "expires_at");
    for (const expires_at of [
      "+275760-09-13T00:00:00Z",
      "2026-03-10T02:00:00+01:00",
      "2026-03-10",
      "1773104400000",
      1773104400000,
      null,
      "2026-03-10T01:00:00",
      "2026-03-10 01:00:00Z",
    ]) {
      invalid(await s.mint(short, { expires_at }));
    }
    const same = await s.mint(short, { expires_at: "2026-03-10T01:00:00.000Z" });
    expect(same.status, same.text).toBe(201);
    expect(same.json.key.expires_at).toBe("2026-03-10T01:00:00.000Z");
  });

  it("owner: null, empty, unknown or contradicting fields; narrowing keeps the caller's own fields", async () => {
    const s = await setup();
    const narrow = (
      await s.keys.create({
        owner: { tenantId: s.tenant, projectId: "p1" },
        name: "p1",
        scopes: ["keys:write", "keys:read"],
      })
    ).plaintext;
    invalid(await s.mint(narrow, { owner: { project_id: "" } }));
    invalid(await s.mint(narrow, { owner: { project_id: null } }));
    invalid(await s.mint(narrow, { owner: null }));
    invalid(await s.mint(narrow, { owner: { tenant_id: "other" } }));
    invalid(await s.mint(narrow, { owner: { api_key_id: "key_x" } }));
    refused(await s.mint(narrow, { owner: { project_id: "p2" } }), "owner.project_id");
    refused(await s.mint(narrow, { owner: { project_id: "P1" } }), "owner.project_id");
    expect((await s.mint(narrow, { tenant_id: "someone-else" })).status).toBe(404);
    expect((await s.mint(narrow, { tenant_id: `latch-test:${s.tenant}` })).status).toBe(404);
    const ok = await s.mint(narrow, { owner: { end_user_id: "u1" } });
    expect(ok.status, ok.text).toBe(201);
    expect(ok.json.key.owner).toEqual({ tenant_id: s.tenant, project_id: "p1", end_user_id: "u1" });
    // The narrowed key cannot then see (or revoke) the tenant-wide admin key.
    const narrowed = ok.json.secret as string;
    const child = await s.mint(narrow, { scopes: ["keys:write", "keys:read"] });
    expect((await s.call(child.json.secret, "DELETE", `/api/billing/keys/${s.admin.key.id}`)).status).toBe(
      404,
    );
    expect((await s.call(child.json.secret, "GET", `/api/billing/keys/${s.admin.key.id}`)).status).toBe(404);
    expect(narrowed).toMatch(/^latch_live_/);
  });

  it("mode: omitted by a test-mode caller stays test; live, LIVE or null are refused", async () => {
    const s = await setup();
    const test = (
      await s.keys.create({ owner: { tenantId: s.tenant }, name: "t", scopes: ["keys:write"], mode: "test" })
    ).plaintext;
    const omitted = await s.mint(test, {});
    expect(omitted.status, omitted.text).toBe(201);
    expect(omitted.json.key.mode).toBe("test");
    expect(omitted.json.secret).toMatch(/^latch_test_/);
    refused(await s.mint(test, { mode: "live" }), "mode");
    invalid(await s.mint(test, { mode: "LIVE" }));
    invalid(await s.mint(test, { mode: null }));
  });

  it("a 246-character tenant cannot get a test-mode key; a tenant in the latch-test: namespace gets no key", async () => {
    const s = await setup();
    const long = "t".repeat(246);
    const live = await s.keys.create({ owner: { tenantId: long }, name: "long", scopes: ["keys:write"] });
    const minted = await s.mint(live.plaintext, { mode: "test" });
    invalid(minted);
    expect(minted.json["invalid-params"][0].name).toBe("owner.tenant_id");
    const edge = await s.keys.create({
      owner: { tenantId: "t".repeat(245) },
      name: "edge",
      scopes: ["keys:write"],
    });
    const test245 = await s.mint(edge.plaintext, { mode: "test" });
    expect(test245.status, test245.text).toBe(201);
    await expect(
      s.keys.create({ owner: { tenantId: `latch-test:${s.tenant}` }, name: "twin", scopes: [] }),
    ).rejects.toThrow(/owner\.tenantId/);
    // The namespace is matched exactly: other spellings are ordinary tenants of their own.
    const upper = await s.keys.create({
      owner: { tenantId: `LATCH-TEST:${s.tenant}` },
      name: "u",
      scopes: [],
    });
    expect(upper.key.owner.tenantId).toBe(`LATCH-TEST:${s.tenant}`);
  });
});

describe("revoking: across tenants, modes, owners and scopes (memory)", () => {
  it("a key cannot revoke another tenant's key, a live key from test mode, a wider owner's key, or a wider key", async () => {
    const s = await setup();
    const other = await s.keys.create({
      owner: { tenantId: `${s.tenant}-b` },
      name: "b",
      scopes: ["keys:write"],
    });
    const writer = await s.keys.create({ owner: { tenantId: s.tenant }, name: "w", scopes: ["keys:write"] });
    const test = await s.keys.create({
      owner: { tenantId: s.tenant },
      name: "t",
      scopes: ALL,
      mode: "test",
    });
    const liveWriter = await s.keys.create({
      owner: { tenantId: s.tenant },
      name: "lw",
      scopes: ["keys:write"],
    });
    expect((await s.call(writer.plaintext, "DELETE", `/api/billing/keys/${other.key.id}`)).status).toBe(404);
    refused(await s.call(writer.plaintext, "DELETE", `/api/billing/keys/${s.admin.key.id}`), "scopes");
    // An all-scopes test-mode key does not see (so cannot revoke) a live keys:write-only key.
    expect((await s.call(test.plaintext, "DELETE", `/api/billing/keys/${liveWriter.key.id}`)).status).toBe(
      404,
    );
    // Path tricks: encoded ids, another tenant's id with a suffix, a traversal.
    for (const path of [
      `/api/billing/keys/${encodeURIComponent(`${other.key.id}/`)}`,
      `/api/billing/keys/..%2F${other.key.id}`,
      `/api/billing/keys/${other.key.id}%00`,
    ]) {
      expect([400, 404]).toContain((await s.call(writer.plaintext, "DELETE", path)).status);
    }
    for (const k of [other, s.admin, liveWriter]) {
      expect((await s.keys.authenticate(k.plaintext)).ok).toBe(true);
    }
  });

  it("a parent revoked while it mints, 100 times over: once both return, no minted key is live", async () => {
    const s = await setup();
    for (let i = 0; i < 100; i++) {
      const parent = await s.keys.create({
        owner: { tenantId: s.tenant },
        name: `p${i}`,
        scopes: ["keys:write", "billing:read"],
      });
      const [minted] = await Promise.all([
        s.mint(parent.plaintext, { scopes: ["billing:read"] }),
        s.call(s.admin.plaintext, "DELETE", `/api/billing/keys/${parent.key.id}`),
      ]);
      if (minted.status === 201) {
        expect((await s.keys.authenticate(minted.json.secret)).ok, `round ${i}`).toBe(false);
      } else {
        expect(minted.status).toBe(401);
      }
    }
  });
});

describe("test-mode keys reach no live data through any route (memory)", () => {
  it("summary, lines, export, usage, keys and credits: a test-mode key sees only its twin's data", async () => {
    const s = await setup();
    const twin = `latch-test:${s.tenant}`;
    await s.records.putMany(recordsOf(s.tenant, 3, "live"));
    await s.records.putMany(recordsOf(twin, 2, "test"));
    const test = await s.keys.create({ owner: { tenantId: s.tenant }, name: "t", scopes: ALL, mode: "test" });
    const t = test.plaintext;
    for (const q of ["", `&tenant_id=${s.tenant}`, `&tenant_id=${encodeURIComponent(twin)}`]) {
      const lines = await s.call(t, "GET", `/billing/lines?${WINDOW}${q}`);
      expect(lines.status, lines.text).toBe(200);
      expect(lines.json.items.map((l: { event_id: string }) => l.event_id.slice(0, 4))).toEqual([
        "test",
        "test",
      ]);
      const csv = await s.call(t, "GET", `/billing/export?${WINDOW}${q}`);
      expect(csv.text).not.toContain("live-");
      expect((parseCsv(csv.text) as string[][]).length).toBe(3);
      const summary = await s.call(t, "GET", `/billing/summary?${WINDOW}${q}`);
      expect(JSON.stringify(summary.json)).not.toContain(`"${s.tenant}"`);
    }
    // A live key never names the twin.
    for (const path of [
      `/billing/lines?${WINDOW}&tenant_id=${encodeURIComponent(twin)}`,
      `/billing/export?${WINDOW}&tenant_id=${encodeURIComponent(twin)}`,
      `/billing/summary?${WINDOW}&tenant_id=${encodeURIComponent(twin)}`,
      `/api/billing/usage?${WINDOW}&tenant_id=${encodeURIComponent(twin)}`,
    ]) {
      expect((await s.call(s.admin.plaintext, "GET", path)).status, path).toBe(404);
    }
    // Live keys and their usage are out of a test-mode key's sight.
    expect((await s.call(t, "GET", `/api/billing/keys/${s.admin.key.id}`)).status).toBe(404);
    expect((await s.call(t, "GET", `/api/billing/usage?${WINDOW}&key_id=${s.admin.key.id}`)).status).toBe(
      404,
    );
    const list = await s.call(t, "GET", "/api/billing/keys?limit=1000");
    expect(list.json.items.every((k: { mode: string }) => k.mode === "test")).toBe(true);
    // Credits: a live ledger is a 404 to a test-mode key; a ledger it creates lives under the twin.
    const liveLedger = await s.call(s.admin.plaintext, "POST", "/api/billing/credits/ledgers", {
      ledger_id: `${s.tenant}-live`,
    });
    expect(liveLedger.status, liveLedger.text).toBe(201);
    expect((await s.call(t, "GET", `/api/billing/credits/ledgers/${s.tenant}-live/balance`)).status).toBe(
      404,
    );
    const testLedger = await s.call(t, "POST", "/api/billing/credits/ledgers", {
      ledger_id: `${s.tenant}-test`,
      subject: { tenant_id: s.tenant },
    });
    expect(testLedger.status, testLedger.text).toBe(201);
    expect(testLedger.json.ledger.subject.tenant_id).toBe(twin);
    const mine = await s.call(s.admin.plaintext, "GET", "/api/billing/credits/ledgers");
    expect(mine.json.items.map((l: { ledger_id: string }) => l.ledger_id)).toEqual([`${s.tenant}-live`]);
    expect(
      (await s.call(s.admin.plaintext, "GET", `/api/billing/credits/ledgers/${s.tenant}-test/balance`))
        .status,
    ).toBe(404);
  });
});

describe("listing keys from test mode (memory)", () => {
  it("a test-mode key's pages and cursors never carry a live key's id, and every test-mode key is reached", async () => {
    const s = await setup();
    const owner = { tenantId: s.tenant };
    const live = new Set([s.admin.key.id]);
    const test = new Set<string>();
    for (let i = 0; i < 12; i++) live.add((await s.keys.create({ owner, name: `l${i}`, scopes: [] })).key.id);
    const reader = await s.keys.create({ owner, name: "t", scopes: ["keys:read"], mode: "test" });
    test.add(reader.key.id);
    for (let i = 0; i < 4; i++) {
      test.add((await s.keys.create({ owner, name: `t${i}`, scopes: [], mode: "test" })).key.id);
    }
    for (const limit of [1, 2, 3, 1000]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 50; pages++) {
        const r = await s.call(
          reader.plaintext,
          "GET",
          `/api/billing/keys?limit=${limit}${cursor === undefined ? "" : `&cursor=${cursor}`}`,
        );
        expect(r.status, r.text).toBe(200);
        for (const item of r.json.items as Array<{ id: string }>) seen.push(item.id);
        cursor = r.json.next_cursor;
        if (cursor === undefined) break;
        expect(live.has(cursor), `limit ${limit}`).toBe(false);
      }
      expect(seen.sort(), `limit ${limit}`).toEqual([...test].sort());
    }
    // A live caller's pages are the store's, unchanged.
    const all = await s.call(s.admin.plaintext, "GET", "/api/billing/keys?limit=5");
    expect(all.json.items).toHaveLength(5);
    expect(all.json.next_cursor).toBe(all.json.items[4].id);
  });
});

describe("failed-authentication limiter and negative cache (memory)", () => {
  const peer = (remoteAddress: string) => ({ incoming: { socket: { remoteAddress } } });

  it("X-Forwarded-For does not split one TCP peer into many clients", async () => {
    const s = await setup();
    for (let i = 0; i < 40; i++) {
      const r = await s.app.fetch(
        new Request(`http://localhost/billing/summary?${WINDOW}`, {
          headers: {
            authorization: `Bearer ${madeUpKey()}`,
            "x-forwarded-for": `10.0.${i}.1`,
            "x-real-ip": `10.1.${i}.1`,
          },
        }),
        peer("203.0.113.7"),
      );
      expect(r.status).toBe(401);
    }
    expect(s.lookups()).toBe(20);
  });

  it("300 concurrent made-up keys from one client cause at most `limit` lookups; its concurrent valid keys all pass", async () => {
    const inner = new MemoryApiKeyStore();
    let lookups = 0;
    const slow: ApiKeyStore = {
      insert: (...a) => inner.insert(...a),
      findByDigest: async (...a) => {
        lookups += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
        return inner.findByDigest(...a);
      },
      get: (...a) => inner.get(...a),
      list: (...a) => inner.list(...a),
      revoke: (...a) => inner.revoke(...a),
      touch: (...a) => inner.touch(...a),
    };
    const keys = new ApiKeys({ store: slow, secret: SECRET });
    const app = createBillingApp({ keys, records: new MemoryRatedRecordStore(), onError: () => undefined });
    const good = await keys.create({ owner: { tenantId: "c" }, name: "g", scopes: ["billing:read"] });
    const send = async (key: string, address: string): Promise<number> => {
      const request = new Request(`http://localhost/billing/summary?${WINDOW}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      return (await app.fetch(request, peer(address))).status;
    };
    const valid = await Promise.all(Array.from({ length: 100 }, () => send(good.plaintext, "198.51.100.1")));
    expect(valid.every((status) => status === 200)).toBe(true);
    expect(lookups).toBe(100);
    lookups = 0;
    const made = await Promise.all(Array.from({ length: 300 }, () => send(madeUpKey(), "198.51.100.2")));
    expect(made.every((status) => status === 401)).toBe(true);
    expect(lookups).toBe(20);
    // Bad checksums cost nothing and take no slot; another client is not held up.
    lookups = 0;
    const mixed = await Promise.all([
      ...Array.from({ length: 50 }, () => {
        const key = madeUpKey();
        return send(`${key.slice(0, -1)}${key.endsWith("0") ? "1" : "0"}`, "198.51.100.3");
      }),
      send(good.plaintext, "198.51.100.3"),
      send(good.plaintext, "198.51.100.4"),
    ]);
    expect(mixed.slice(-2)).toEqual([200, 200]);
    expect(lookups).toBe(2);
  });

  it("an IPv6 client rotating through its /64 shares one failure budget", async () => {
    const s = await setup();
    for (let i = 1; i <= 40; i++) {
      const address =
        i % 2 === 0 ? `2001:db8:0:7::${i.toString(16)}` : `2001:0db8:0000:0007:${i.toString(16)}::1`;
      const r = await s.app.fetch(
        new Request(`http://localhost/billing/summary?${WINDOW}`, {
          headers: { authorization: `Bearer ${madeUpKey()}` },
        }),
        peer(address),
      );
      expect(r.status).toBe(401);
    }
    expect(s.lookups()).toBe(20);
    // Another /64 has its own budget.
    await s.app.fetch(
      new Request(`http://localhost/billing/summary?${WINDOW}`, {
        headers: { authorization: `Bearer ${madeUpKey()}` },
      }),
      peer("2001:db8:0:8::1"),
    );
    expect(s.lookups()).toBe(21);
  });

  it("peerClient: IPv4 as is, IPv4-mapped as IPv4, IPv6 by its /64 in one spelling", () => {
    expect(peerClient("203.0.113.7")).toBe("203.0.113.7");
    expect(peerClient("::ffff:203.0.113.7")).toBe("203.0.113.7");
    expect(peerClient("::FFFF:203.0.113.7")).toBe("203.0.113.7");
    expect(peerClient("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(peerClient("2001:0DB8:0:0:ffff:1:2:3")).toBe("2001:db8:0:0::/64");
    expect(peerClient("fe80::1%eth0")).toBe("fe80:0:0:0::/64");
    expect(peerClient("::1")).toBe("0:0:0:0::/64");
    expect(peerClient("::")).toBe("0:0:0:0::/64");
    expect(peerClient("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
    expect(peerClient("1:2:3:4:5:6:192.0.2.1")).toBe("1:2:3:4::/64");
  });

  it("a client cannot make another key refused by presenting look-alikes of it", async () => {
    const s = await setup();
    const good = s.admin.plaintext;
    // Two neighbouring characters swapped: the last pair that differs (a random key may end in
    // two equal characters, whose swap would be the key itself).
    let i = good.length - 2;
    while (good[i] === good[i + 1]) i--;
    const swapped = `${good.slice(0, i)}${good[i + 1]}${good[i]}${good.slice(i + 2)}`;
    expect(swapped).not.toBe(good);
    const lookalikes = [
      good.toUpperCase(),
      good.slice(0, -1),
      `${good}x`,
      good.replace("latch_live_", "latch_test_"),
      swapped,
    ];
    for (const k of lookalikes)
      expect((await s.call(k, "GET", `/billing/summary?${WINDOW}`)).status).toBe(401);
    // 10,001 made-up keys fill and roll the negative cache; the valid key is unaffected.
    for (let i = 0; i < 10_001; i++) await s.keys.authenticate(madeUpKey());
    expect((await s.call(good, "GET", `/billing/summary?${WINDOW}`)).status).toBe(200);
    expect((await s.call(`${good} `, "GET", `/billing/summary?${WINDOW}`)).status).toBe(200);
  }, 60_000);

  it("a key issued by another ApiKeys (another process) after a miss is accepted", async () => {
    const shared = new MemoryApiKeyStore();
    const a = new ApiKeys({ store: shared, secret: SECRET });
    const b = new ApiKeys({ store: shared, secret: SECRET });
    for (let i = 0; i < 50; i++) await a.authenticate(madeUpKey());
    const issued = await b.create({ owner: { tenantId: "x" }, name: "late", scopes: [] });
    expect((await a.authenticate(issued.plaintext)).ok).toBe(true);
  });
});

describe("request ids cannot inject (memory)", () => {
  it("CR/LF, quotes, unicode, 129 characters or an empty id are replaced by a UUID", async () => {
    const s = await setup();
    for (const id of ["abc\u0085def", "a b", 'a"b', "a;b", "ä", "x".repeat(129), "", "a\u2028b"]) {
      const headers = new Headers();
      try {
        headers.set("x-request-id", id);
      } catch {
        continue; // the Fetch API refuses it before it reaches the app
      }
      const r = await s.app.request(`/billing/summary?${WINDOW}`, { headers });
      const echoed = r.headers.get("x-request-id") ?? "";
      expect(echoed).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(((await r.json()) as { request_id: string }).request_id).toBe(echoed);
    }
    const kept = await s.app.request("/nope", { headers: { "x-request-id": "x".repeat(128) } });
    expect(kept.headers.get("x-request-id")).toBe("x".repeat(128));
  });
});

describe("CSV formula neutralisation: bypass attempts", () => {
  const unquote = (cell: string) =>
    (parseCsv(`${cell}\r\n`, { relax_quotes: false }) as string[][])[0]?.[0] ?? "";

  it("every cell a spreadsheet could run starts with a quote once unquoted; the value round-trips", () => {
    const attacks = [
      "=1+1",
      "+1+1",
      "-1+1",
      "@SUM(A1)",
      "\t=1+1",
      "\r=1+1",
      "=cmd|' /C calc'!A0",
      "'=1+1",
      "''=1",
      "a\n=1+1",
      "a,=1+1",
      '"=1+1',
      "-0.5",
      "=",
      "-",
      "@",
    ];
    for (const value of attacks) {
      const cell = csvCell(value);
      const read = unquote(cell);
      if (/^[=+\-@\t\r]/.test(value)) expect(read.startsWith("'"), JSON.stringify(value)).toBe(true);
      // A cell read back never starts with a formula character.
      expect(/^[=+\-@\t\r]/.test(read), JSON.stringify(value)).toBe(false);
      expect(csvCellValue(read), JSON.stringify(value)).toBe(value);
    }
    // A number column keeps only plain decimals; anything else is text and neutralised.
    expect(csvCell("-0.5", "number")).toBe("-0.5");
    for (const value of ["-1+1", "-1e3", "-0x1", "- 1", "-1,5", "=1", "+1"]) {
      expect(/^[=+\-@]/.test(unquote(csvCell(value, "number"))), value).toBe(false);
    }
  });

  it("random strings round-trip through csvCell and csvCellValue", () => {
    const alphabet = ["=", "+", "-", "@", "\t", "\r", "\n", "'", '"', ",", "a", " ", "|", "!", "1"];
    for (let i = 0; i < 2_000; i++) {
      const length = 1 + (i % 7);
      let value = "";
      for (let j = 0; j < length; j++) value += alphabet[(i * 31 + j * 17 + (i >> j)) % alphabet.length];
      const read = unquote(csvCell(value));
      expect(csvCellValue(read), JSON.stringify(value)).toBe(value);
      expect(/^[=+\-@\t\r]/.test(read), JSON.stringify(value)).toBe(false);
    }
  });

  it("the HTTP export neutralises attacker-chosen subject fields and model names", async () => {
    const s = await setup();
    const evil = makeRatedRecord({
      observation: {
        eventId: `${s.tenant}-evil:0:openai`,
        subject: {
          tenantId: s.tenant,
          projectId: '=HYPERLINK("http://x")',
          endUserId: "\t=1+1",
          feature: "-2+3",
        },
        timing: { startedAt: "2026-03-01T10:00:00Z", completedAt: "2026-03-01T10:00:01Z" },
        model: { billableModel: "+cmd|' /C calc'!A0" },
      },
    });
    await s.records.putMany([evil]);
    const csv = await s.call(s.admin.plaintext, "GET", `/billing/export?${WINDOW}`);
    const rows = parseCsv(csv.text) as string[][];
    expect(rows).toHaveLength(2);
    for (const cell of rows[1] as string[]) expect(/^[=+\-@\t\r]/.test(cell), cell).toBe(false);
    expect(rows[1]).toContain('\'=HYPERLINK("http://x")');
  });
});

describe("size limits over a real socket", () => {
  /** Sends raw bytes and returns the raw response (status line first). */
  function raw(url: string, bytes: Buffer): Promise<string> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname);
      let out = "";
      socket.on("data", (d) => {
        out += d.toString("latin1");
      });
      socket.on("error", () => resolve(out));
      socket.on("close", () => resolve(out));
      socket.setTimeout(10_000, () => {
        socket.destroy();
        reject(new Error("timeout"));
      });
      socket.end(bytes);
    });
  }

  it("chunked with a lying Content-Length, gzip bodies, many small headers, long queries and encoded paths", async () => {
    const s = await setup({ limits: { body: 1024 } });
    const server = await listen(s.app);
    const auth = `Authorization: Bearer ${s.admin.plaintext}\r\n`;
    try {
      // Both Transfer-Encoding and Content-Length: Node refuses the request itself.
      const both = await raw(
        server.url,
        Buffer.from(
          `POST /api/billing/keys HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${(4096).toString(16)}\r\n${"a".repeat(4096)}\r\n0\r\n\r\n`,
        ),
      );
      expect(both.slice(0, 12)).toBe("HTTP/1.1 400");
      // Chunked only, past the limit: 413 while streaming.
      const chunked = await raw(
        server.url,
        Buffer.from(
          `POST /api/billing/keys HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${"400\r\n".concat(" ".repeat(1024), "\r\n").repeat(4)}0\r\n\r\n`,
        ),
      );
      expect(chunked.slice(0, 12)).toBe("HTTP/1.1 413");
      expect(chunked).toContain("application/problem+json");
      // A gzip bomb is not inflated: the body is not JSON.
      const bomb = gzipSync(Buffer.alloc(50_000_000, 0x20));
      expect(bomb.length).toBeLessThan(1024 * 64);
      const gz = await new Promise<number>((resolve, reject) => {
        const small = gzipSync(Buffer.from(`{"name":"x","scopes":[]${" ".repeat(5_000)}}`));
        const req = httpRequest(
          `${server.url}/api/billing/keys`,
          {
            method: "POST",
            headers: {
              authorization: `Bearer ${s.admin.plaintext}`,
              "content-type": "application/json",
              "content-encoding": "gzip",
              "content-length": String(small.length),
            },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end(small);
      });
      expect(gz).toBe(400);
      // Many small headers past 8 KiB in total (each tiny): 431 problem.
      const many = Array.from({ length: 1_000 }, (_, i) => `x-h${i}: v\r\n`).join("");
      const headers = await raw(
        server.url,
        Buffer.from(
          `GET /billing/summary?${WINDOW} HTTP/1.1\r\nHost: x\r\n${auth}${many}Connection: close\r\n\r\n`,
        ),
      );
      expect(headers.slice(0, 12)).toBe("HTTP/1.1 431");
      expect(headers).toContain("application/problem+json");
      // A long query made of repeated short parameters: 414.
      const query = await fetch(`${server.url}/billing/summary?${WINDOW}${"&a=1".repeat(1_100)}`, {
        headers: { authorization: `Bearer ${s.admin.plaintext}` },
      });
      expect(query.status).toBe(414);
      await query.arrayBuffer();
      // A path of percent-encoded characters is measured as sent: 414.
      const path = await fetch(`${server.url}/api/billing/keys/${"%41".repeat(700)}`, {
        headers: { authorization: `Bearer ${s.admin.plaintext}` },
      });
      expect(path.status).toBe(414);
      await path.arrayBuffer();
    } finally {
      await server.close();
    }
  }, 60_000);
});
