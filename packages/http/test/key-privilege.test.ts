import {
  ApiKeys,
  MemoryApiKeyStore,
  MemoryCreditLedger,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
} from "@latch/core";
import { ApiKeyHasher, generateApiKeyId, testModeSubject } from "@latch/core/adapter";
import { apiKeyAuth, createBillingApp, keySubject, type TestModeData } from "@latch/http";
import { makeRatedRecord } from "@latch/testkit";
import { Hono } from "hono";
import { beforeAll, describe, expect, it } from "vitest";

// Least privilege for keys over HTTP (minting, revoking, revocation cascading to minted keys)
// and test-mode isolation, on the in-memory stores; the cascade on every backend is in
// @latch/testkit's ApiKeyStore suite.
const SECRET = "http-privilege-secret-http-privilege-secret-01";
const NOW = Date.parse("2026-03-10T00:00:00Z");
const WINDOW = "from=2026-03-01T00:00:00Z&to=2026-03-04T00:00:00Z";
const ALL = ["keys:read", "keys:write", "usage:read", "billing:read", "credits:read", "credits:write"];
const TENANT = "acme";

const store = new MemoryApiKeyStore();
const keys = new ApiKeys({
  store,
  secret: SECRET,
  quota: new MemoryQuotaReservator(),
  clock: () => NOW,
});
const records = new MemoryRatedRecordStore();
const credits = new MemoryCreditLedger({ clock: () => NOW });
const apps = {
  isolated: createBillingApp({ keys, records, credits, clock: () => NOW }),
  shared: createBillingApp({ keys, records, credits, clock: () => NOW, testModeData: "shared" }),
};

/** One request to the app (`shared` for the opt-out), JSON in and out. */
async function call(
  key: string,
  method: string,
  path: string,
  body?: unknown,
  mode: TestModeData = "isolated",
) {
  const response = await apps[mode].request(path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const type = response.headers.get("content-type") ?? "";
  return {
    status: response.status,
    type,
    text,
    json: /^application\/(problem\+)?json/.test(type) ? JSON.parse(text) : undefined,
  };
}

/** Asserts a 403 `privilege_exceeded` problem naming `field` (in `detail` and `invalid-params`). */
function expectRefused(r: Awaited<ReturnType<typeof call>>, field: string): void {
  expect(r.status, r.text).toBe(403);
  expect(r.type).toBe("application/problem+json");
  expect(r.json.type).toBe("urn:latch:problem:privilege_exceeded");
  expect(r.json.detail.startsWith(`${field}: `)).toBe(true);
  expect(r.json["invalid-params"]).toEqual([{ name: field, in: "body", reason: expect.any(String) }]);
}

const issue = async (scopes: string[], extra: Partial<Parameters<ApiKeys["create"]>[0]> = {}) =>
  keys.create({ owner: { tenantId: TENANT }, name: "issued", scopes, ...extra });
const mint = (minter: string, body: object, mode: TestModeData = "isolated") =>
  call(minter, "POST", "/api/billing/keys", { name: "minted", scopes: [], ...body }, mode);

describe("minting keys over HTTP is least privilege (403 naming the field)", () => {
  it("scopes: only the minter's own", async () => {
    const writer = (await issue(["keys:write", "usage:read"])).plaintext;
    expectRefused(await mint(writer, { scopes: ["usage:read", "billing:read"] }), "scopes.1");
    expect((await mint(writer, { scopes: ["usage:read"] })).status).toBe(201);
  });

  it("quota: a key with a quota mints none without one, none larger, none in another unit", async () => {
    const limited = (await issue(["keys:write"], { quota: { unit: "tokens", limit: 10 } })).plaintext;
    expectRefused(await mint(limited, {}), "quota");
    expectRefused(await mint(limited, { quota: { unit: "tokens", limit: 11 } }), "quota.limit");
    expectRefused(
      await mint(limited, { quota: { unit: "money", currency: "USD", limit: "1" } }),
      "quota.unit",
    );
    const ok = await mint(limited, { quota: { unit: "tokens", limit: 10 } });
    expect(ok.status).toBe(201);
    expect(ok.json.key.quota).toEqual({ unit: "tokens", limit: 10 });
  });

  it("expiry: a key that expires mints none that never expires or expires later", async () => {
    const expiring = (await issue(["keys:write"], { expiresAt: "2026-03-10T01:00:00Z" })).plaintext;
    expectRefused(await mint(expiring, {}), "expires_at");
    expectRefused(await mint(expiring, { expires_at: "9999-01-01T00:00:00Z" }), "expires_at");
    expect((await mint(expiring, { expires_at: "2026-03-10T00:30:00Z" })).status).toBe(201);
  });

  it("mode: a test-mode key mints no live key, and mints test-mode keys by default", async () => {
    const test = (await issue(["keys:write"], { mode: "test" })).plaintext;
    expectRefused(await mint(test, { mode: "live" }), "mode");
    const minted = await mint(test, {});
    expect(minted.status).toBe(201);
    expect(minted.json.key.mode).toBe("test");
    expect(minted.json.secret.startsWith("latch_test_")).toBe(true);
  });

  it("owner: a project key mints within its project only; a tenant key may narrow to a project", async () => {
    const project = (
      await keys.create({ owner: { tenantId: TENANT, projectId: "p1" }, name: "p", scopes: ["keys:write"] })
    ).plaintext;
    expectRefused(await mint(project, { owner: { project_id: "p2" } }), "owner.project_id");
    const same = await mint(project, { owner: { project_id: "p1", feature: "chat" } });
    expect(same.status).toBe(201);
    expect(same.json.key.owner).toEqual({ tenant_id: TENANT, project_id: "p1", feature: "chat" });
    const tenant = (await issue(["keys:write"])).plaintext;
    const narrowed = await mint(tenant, { owner: { project_id: "p9" } });
    expect(narrowed.json.key.owner).toEqual({ tenant_id: TENANT, project_id: "p9" });
  });

  it("refuses the report's escalation: a 10-token, 1-hour test key cannot mint a live, unlimited, 9999 key", async () => {
    const weak = await issue(["keys:write", "billing:read"], {
      mode: "test",
      quota: { unit: "tokens", limit: 10 },
      expiresAt: "2026-03-10T01:00:00Z",
    });
    const body = { scopes: ["billing:read"], mode: "live", expires_at: "9999-12-31T00:00:00Z" };
    expectRefused(await mint(weak.plaintext, body), "quota");
    expectRefused(
      await mint(weak.plaintext, { ...body, quota: { unit: "tokens", limit: 10 } }),
      "expires_at",
    );
    expectRefused(
      await mint(weak.plaintext, {
        ...body,
        quota: { unit: "tokens", limit: 10 },
        expires_at: "2026-03-10T01:00:00Z",
      }),
      "mode",
    );
    // Nothing was minted by it.
    const all = await keys.list({ tenantId: TENANT }, { limit: 1000 });
    expect(all.items.filter((k) => k.createdBy === weak.key.id)).toEqual([]);
  });
});

describe("revoking over HTTP", () => {
  it("a keys:write-only key cannot revoke a key with scopes it lacks (the admin key): 403", async () => {
    const admin = await issue(ALL);
    const writer = await issue(["keys:write"]);
    const reader = await issue([]);
    const refused = await call(writer.plaintext, "DELETE", `/api/billing/keys/${admin.key.id}`);
    expect(refused.status).toBe(403);
    expect(refused.json.type).toBe("urn:latch:problem:privilege_exceeded");
    expect(refused.json.detail.startsWith("scopes: ")).toBe(true);
    expect((await call(admin.plaintext, "GET", "/api/billing/keys")).status).toBe(200); // still works
    expect((await call(writer.plaintext, "DELETE", `/api/billing/keys/${reader.key.id}`)).status).toBe(200);
    expect((await call(reader.plaintext, "GET", `/billing/summary?${WINDOW}`)).status).toBe(401);
  });

  it("revokes what a key minted, transitively, and nothing above it", async () => {
    const admin = await issue(ALL);
    const child = await mint(admin.plaintext, { scopes: ["keys:write", "billing:read"] });
    const grandchild = await mint(child.json.secret, { scopes: ["billing:read"] });
    const sibling = await mint(admin.plaintext, { scopes: ["billing:read"] });
    expect(grandchild.status).toBe(201);
    const alive = async (secret: string) => (await call(secret, "GET", `/billing/summary?${WINDOW}`)).status;
    expect(await alive(grandchild.json.secret)).toBe(200);
    expect((await call(admin.plaintext, "DELETE", `/api/billing/keys/${child.json.key.id}`)).status).toBe(
      200,
    );
    expect(await alive(child.json.secret)).toBe(401);
    expect(await alive(grandchild.json.secret)).toBe(401);
    expect(await alive(sibling.json.secret)).toBe(200);
    expect(await alive(admin.plaintext)).toBe(200);
    const read = await call(admin.plaintext, "GET", `/api/billing/keys/${grandchild.json.key.id}`);
    expect(read.json.revoked_at).toBe("2026-03-10T00:00:00.000Z");
    expect(read.json.created_by).toBe(child.json.key.id);
    expect(child.json.key.created_by).toBe(admin.key.id);
    // Revoking the admin key (in code) takes the rest of its lineage with it.
    await keys.revoke({ tenantId: TENANT }, admin.key.id);
    expect(await alive(sibling.json.secret)).toBe(401);
  });
});

describe("test-mode keys see only test-mode data (testModeData: isolated, the default)", () => {
  let live = "";
  let test = "";
  let liveKeyId = "";
  const testTenant = testModeSubject({ tenantId: TENANT }).tenantId;

  beforeAll(async () => {
    const batch = [];
    for (let i = 0; i < 6; i++) {
      const testMode = i >= 4; // 4 live records, 2 test-mode ones
      batch.push(
        makeRatedRecord({
          observation: {
            eventId: `${testMode ? "test" : "live"}-${i}:0:openai`,
            subject: { tenantId: testMode ? testTenant : TENANT, apiKeyId: "key_gateway" },
            timing: { startedAt: "2026-03-02T10:00:00Z", completedAt: `2026-03-02T10:00:0${i}Z` },
          },
        }),
      );
    }
    await records.putMany(batch);
    const liveKey = await issue(ALL);
    live = liveKey.plaintext;
    liveKeyId = liveKey.key.id;
    test = (await issue(ALL, { mode: "test" })).plaintext;
    await credits.createFeature({
      featureId: "tokens",
      measure: { kind: "quantity", meters: ["input_tokens"] },
    });
    await credits.createLedger({ ledgerId: "live-ledger", subject: { tenantId: TENANT } });
    await credits.grant({
      grantId: "live-grant",
      ledgerId: "live-ledger",
      featureId: "tokens",
      amount: "1000",
      effectiveAt: "2026-03-01T00:00:00Z",
    });
  });

  const requests = async (key: string, mode: TestModeData = "isolated") =>
    (await call(key, "GET", `/billing/summary?${WINDOW}`, undefined, mode)).json.totals.requests;

  it("summary, lines, export and usage: a test key reads only test-mode records, a live key only live ones", async () => {
    expect(await requests(live)).toBe(4);
    expect(await requests(test)).toBe(2);
    const lines = async (key: string) =>
      (await call(key, "GET", `/billing/lines?${WINDOW}`)).json.items.map(
        (l: { event_id: string }) => l.event_id,
      );
    expect((await lines(test)).every((id: string) => id.startsWith("test-"))).toBe(true);
    expect(await lines(test)).toHaveLength(2);
    expect((await lines(live)).every((id: string) => id.startsWith("live-"))).toBe(true);
    const exported = async (key: string) =>
      (await call(key, "GET", `/billing/export?${WINDOW}&format=jsonl`)).text;
    expect(await exported(test)).not.toContain("live-");
    expect(await exported(live)).not.toContain("test-");
    expect(await exported(live)).not.toContain(testTenant);
    const usage = async (key: string) =>
      (await call(key, "GET", `/api/billing/usage?${WINDOW}`)).json.totals.requests;
    expect(await usage(test)).toBe(2);
    expect(await usage(live)).toBe(4);
    // Naming its own tenant changes nothing: still the test-mode data.
    expect(
      (await call(test, "GET", `/billing/summary?${WINDOW}&tenant_id=${TENANT}`)).json.totals.requests,
    ).toBe(2);
  });

  it("a test key cannot read a live key's usage and quota, nor list or read live keys", async () => {
    expect((await call(test, "GET", `/api/billing/usage?${WINDOW}&key_id=${liveKeyId}`)).status).toBe(404);
    expect((await call(test, "GET", `/api/billing/keys/${liveKeyId}`)).status).toBe(404);
    expect((await call(test, "DELETE", `/api/billing/keys/${liveKeyId}`)).status).toBe(404);
    const listed = await call(test, "GET", "/api/billing/keys?limit=1000");
    expect(listed.json.items.length).toBeGreaterThan(0);
    expect(listed.json.items.every((k: { mode: string }) => k.mode === "test")).toBe(true);
    expect((await call(live, "GET", `/api/billing/keys/${liveKeyId}`)).status).toBe(200);
  });

  it("credits: a test key cannot read a live ledger's balance; a live key does not see a test ledger", async () => {
    expect((await call(test, "GET", "/api/billing/credits/ledgers/live-ledger/balance")).status).toBe(404);
    const balance = await call(live, "GET", "/api/billing/credits/ledgers/live-ledger/balance");
    expect(balance.status).toBe(200);
    const created = await call(test, "POST", "/api/billing/credits/ledgers", {
      ledger_id: "test-ledger",
      subject: { tenant_id: TENANT, project_id: "p1" },
    });
    expect(created.status).toBe(201);
    expect(created.json.ledger.subject.tenant_id).toBe(testTenant);
    expect((await call(live, "GET", "/api/billing/credits/ledgers/test-ledger")).status).toBe(404);
    const ids = async (key: string) =>
      (await call(key, "GET", "/api/billing/credits/ledgers")).json.items.map(
        (l: { ledger_id: string }) => l.ledger_id,
      );
    expect(await ids(live)).toEqual(["live-ledger"]);
    expect(await ids(test)).toEqual(["test-ledger"]);
  });

  it("testModeData: shared keeps the old behaviour: a test key acts for its owner's live data", async () => {
    expect(await requests(test, "shared")).toBe(4);
    expect(
      (await call(test, "GET", "/api/billing/credits/ledgers/live-ledger/balance", undefined, "shared"))
        .status,
    ).toBe(200);
  });

  it("refuses (401) a live key stored for a tenant in the test-mode namespace, which ApiKeys never issues", async () => {
    // A well-formed live key (from a scratch store), stored here for the reserved tenant.
    const { plaintext } = await new ApiKeys({ store: new MemoryApiKeyStore(), secret: SECRET }).create({
      owner: { tenantId: "scratch" },
      name: "scratch",
      scopes: [],
    });
    const record = {
      id: generateApiKeyId(),
      owner: { tenantId: testTenant },
      name: "forged",
      scopes: ALL,
      mode: "live" as const,
      createdAt: "2026-03-01T00:00:00.000Z",
    };
    await store.insert(record, new ApiKeyHasher(SECRET).digest(plaintext));
    expect((await keys.authenticate(plaintext)).ok).toBe(true);
    expect((await call(plaintext, "GET", `/billing/summary?${WINDOW}`)).status).toBe(401);
    expect(keySubject(record)).toBeUndefined();
    expect(keySubject(record, "shared")).toEqual({ tenantId: testTenant });
    expect(keySubject({ ...record, owner: { tenantId: TENANT }, mode: "test" })).toEqual({
      tenantId: testTenant,
    });
  });

  it("puts the data subject on the context for a gateway's own routes (record usage under it)", async () => {
    const gateway = new Hono();
    gateway.use("/v1/*", apiKeyAuth(keys));
    gateway.get("/v1/whoami", (c) => c.json(c.get("subject" as never)));
    const whoami = async (key: string) =>
      (await gateway.request("/v1/whoami", { headers: { authorization: `Bearer ${key}` } })).json();
    expect(await whoami(test)).toEqual({ tenantId: testTenant });
    expect(await whoami(live)).toEqual({ tenantId: TENANT });
  });
});
