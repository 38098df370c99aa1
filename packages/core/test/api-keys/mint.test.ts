import { describe, expect, it } from "vitest";
import { testModeSubject } from "../../src/adapter.js";
import { PrivilegeExceededError } from "../../src/errors/index.js";
import {
  type ApiKeyRecord,
  ApiKeys,
  LatchError,
  LatchValidationError,
  MemoryApiKeyStore,
  MemoryQuotaReservator,
} from "../../src/index.js";

const secret = "core-mint-secret-core-mint-secret-0123";
const owner = { tenantId: "acme" };
const NOW = Date.parse("2026-03-01T00:00:00Z");

function setup() {
  return new ApiKeys({
    store: new MemoryApiKeyStore(),
    secret,
    quota: new MemoryQuotaReservator(),
    clock: () => NOW,
  });
}

/** The field a mint is refused for (a `privilege_exceeded`), or "ok" when it is minted. */
async function refusal(keys: ApiKeys, minter: ApiKeyRecord, input: Record<string, unknown>): Promise<string> {
  try {
    await keys.mint(minter, { owner, name: "child", scopes: [], ...input } as never);
    return "ok";
  } catch (error) {
    if (!PrivilegeExceededError.isInstance(error)) throw error;
    expect(LatchError.is(error, "privilege_exceeded")).toBe(true);
    expect(error.message.startsWith(`${error.field}: `)).toBe(true);
    return error.field;
  }
}

describe("ApiKeys.mint: least privilege", () => {
  it("mints only scopes the minter has, naming the first extra one by index", async () => {
    const keys = setup();
    const { key } = await keys.create({ owner, name: "w", scopes: ["keys:write", "usage:read"] });
    expect(await refusal(keys, key, { scopes: ["usage:read", "billing:read"] })).toBe("scopes.1");
    expect(await refusal(keys, key, { scopes: ["usage:read", "keys:write"] })).toBe("ok");
    expect(await refusal(keys, key, { scopes: [] })).toBe("ok");
  });

  it("with a minter quota: requires a quota in the same unit and currency, no larger", async () => {
    const keys = setup();
    const tokens = (await keys.create({ owner, name: "t", scopes: [], quota: { unit: "tokens", limit: 10 } }))
      .key;
    expect(await refusal(keys, tokens, {})).toBe("quota");
    expect(await refusal(keys, tokens, { quota: { unit: "tokens", limit: 11 } })).toBe("quota.limit");
    expect(await refusal(keys, tokens, { quota: { unit: "money", currency: "USD", limit: "1" } })).toBe(
      "quota.unit",
    );
    expect(await refusal(keys, tokens, { quota: { unit: "tokens", limit: 10 } })).toBe("ok");
    expect(await refusal(keys, tokens, { quota: { unit: "tokens", limit: 0 } })).toBe("ok");

    const money = (
      await keys.create({
        owner,
        name: "m",
        scopes: [],
        quota: { unit: "money", currency: "USD", limit: "2.5" },
      })
    ).key;
    expect(await refusal(keys, money, { quota: { unit: "money", currency: "EUR", limit: "1" } })).toBe(
      "quota.currency",
    );
    expect(await refusal(keys, money, { quota: { unit: "money", currency: "USD", limit: "2.500001" } })).toBe(
      "quota.limit",
    );
    expect(await refusal(keys, money, { quota: { unit: "money", currency: "USD", limit: "2.50" } })).toBe(
      "ok",
    );

    // A minter without a quota may mint any quota, or none.
    const free = (await keys.create({ owner, name: "f", scopes: [] })).key;
    expect(await refusal(keys, free, {})).toBe("ok");
    expect(await refusal(keys, free, { quota: { unit: "tokens", limit: 9_000_000 } })).toBe("ok");
  });

  it("with a minter expiry: requires an expiry no later", async () => {
    const keys = setup();
    const { key } = await keys.create({ owner, name: "e", scopes: [], expiresAt: "2026-03-01T01:00:00Z" });
    expect(await refusal(keys, key, {})).toBe("expiresAt");
    expect(await refusal(keys, key, { expiresAt: "9999-01-01T00:00:00Z" })).toBe("expiresAt");
    expect(await refusal(keys, key, { expiresAt: "2026-03-01T01:00:00.001Z" })).toBe("expiresAt");
    expect(await refusal(keys, key, { expiresAt: "2026-03-01T01:00:00Z" })).toBe("ok");
    const free = (await keys.create({ owner, name: "f", scopes: [] })).key;
    expect(await refusal(keys, free, { expiresAt: "9999-01-01T00:00:00Z" })).toBe("ok");
  });

  it("a test-mode minter mints test-mode keys only; the mode defaults to the minter's", async () => {
    const keys = setup();
    const test = (await keys.create({ owner, name: "t", scopes: [], mode: "test" })).key;
    expect(await refusal(keys, test, { mode: "live" })).toBe("mode");
    const inherited = await keys.mint(test, { owner, name: "c", scopes: [] });
    expect(inherited.key.mode).toBe("test");
    expect(inherited.plaintext.startsWith("latch_test_")).toBe(true);
    const live = (await keys.create({ owner, name: "l", scopes: [] })).key;
    expect((await keys.mint(live, { owner, name: "c", scopes: [] })).key.mode).toBe("live");
    expect((await keys.mint(live, { owner, name: "c", scopes: [], mode: "test" })).key.mode).toBe("test");
  });

  it("mints within the minter's owner only: a project key cannot mint for another project or the tenant", async () => {
    const keys = setup();
    const project = (
      await keys.create({ owner: { tenantId: "acme", projectId: "p1" }, name: "p", scopes: [] })
    ).key;
    expect(await refusal(keys, project, { owner: { tenantId: "acme" } })).toBe("owner.projectId");
    expect(await refusal(keys, project, { owner: { tenantId: "acme", projectId: "p2" } })).toBe(
      "owner.projectId",
    );
    expect(await refusal(keys, project, { owner: { tenantId: "globex", projectId: "p1" } })).toBe(
      "owner.tenantId",
    );
    expect(
      await refusal(keys, project, { owner: { tenantId: "acme", projectId: "p1", feature: "chat" } }),
    ).toBe("ok");
    const tenant = (await keys.create({ owner, name: "t", scopes: [] })).key;
    expect(await refusal(keys, tenant, { owner: { tenantId: "acme", projectId: "p9" } })).toBe("ok");
  });

  it("records the minter and stores nothing when a mint is refused", async () => {
    const store = new MemoryApiKeyStore();
    const keys = new ApiKeys({ store, secret });
    const { key } = await keys.create({ owner, name: "w", scopes: ["keys:write"] });
    const minted = await keys.mint(key, { owner, name: "c", scopes: [] });
    expect(minted.key.createdBy).toBe(key.id);
    expect(await store.get(owner, minted.key.id)).toEqual(minted.key);
    expect((await keys.create({ owner, name: "code", scopes: [] })).key.createdBy).toBeUndefined();
    await expect(keys.mint(key, { owner, name: "x", scopes: ["billing:read"] })).rejects.toThrow(
      PrivilegeExceededError,
    );
    expect((await store.list(owner, { limit: 100 })).items).toHaveLength(3);
  });
});

describe("ApiKeys.revokeAs", () => {
  it("revokes only a key whose every scope the caller has; a test-mode caller only test-mode keys", async () => {
    const keys = setup();
    const admin = (await keys.create({ owner, name: "a", scopes: ["keys:write", "billing:read"] })).key;
    const writer = (await keys.create({ owner, name: "w", scopes: ["keys:write"] })).key;
    const reader = (await keys.create({ owner, name: "r", scopes: [] })).key;
    const error = await keys.revokeAs(writer, admin.id).catch((e: unknown) => e);
    expect(PrivilegeExceededError.isInstance(error) && error.field).toBe("scopes");
    expect((await keys.get(owner, admin.id))?.revokedAt).toBeUndefined();
    expect((await keys.revokeAs(writer, reader.id))?.revokedAt).toBe("2026-03-01T00:00:00.000Z");
    expect(await keys.revokeAs(writer, "key_nope")).toBeUndefined();
    // Another tenant's key is not found (undefined), never a privilege error that confirms it.
    const other = (await keys.create({ owner: { tenantId: "globex" }, name: "g", scopes: [] })).key;
    expect(await keys.revokeAs(admin, other.id)).toBeUndefined();

    const test = (await keys.create({ owner, name: "t", scopes: ["keys:write"], mode: "test" })).key;
    const live = (await keys.create({ owner, name: "l", scopes: [] })).key;
    const mode = await keys.revokeAs(test, live.id).catch((e: unknown) => e);
    expect(PrivilegeExceededError.isInstance(mode) && mode.field).toBe("mode");
    expect((await keys.revokeAs(admin, test.id))?.revokedAt).toBeDefined();
  });
});

describe("test-mode tenants", () => {
  it("are reserved: no key is issued for a tenant in the test-mode namespace or too long for it", async () => {
    const keys = setup();
    const field = async (input: Record<string, unknown>) => {
      const error = await keys.create({ name: "x", scopes: [], ...input } as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LatchValidationError);
      return (error as LatchValidationError).issues.map((i) => i.path);
    };
    expect(await field({ owner: testModeSubject(owner) })).toEqual(["owner.tenantId"]);
    expect(await field({ owner: testModeSubject(owner), mode: "test" })).toEqual(["owner.tenantId"]);
    expect(await field({ owner: { tenantId: "a".repeat(246) }, mode: "test" })).toEqual(["owner.tenantId"]);
    expect(
      (await keys.create({ owner: { tenantId: "a".repeat(245) }, name: "x", scopes: [], mode: "test" })).key,
    ).toBeDefined();
    expect(
      (await keys.create({ owner: { tenantId: "a".repeat(256) }, name: "x", scopes: [] })).key,
    ).toBeDefined();
    expect(testModeSubject({ tenantId: "acme", projectId: "p1" })).toEqual({
      tenantId: "latch-test:acme",
      projectId: "p1",
    });
  });
});
