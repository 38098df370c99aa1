import { describe, expect, it } from "vitest";
import { apiKeyQuotaAccount } from "../../src/adapter.js";
import { ApiKeys, LatchValidationError, MemoryApiKeyStore, MemoryQuotaReservator } from "../../src/index.js";

const secret = "core-test-secret-core-test-secret-0123";
const owner = { tenantId: "acme" };

describe("ApiKeys", () => {
  it("sets a key's quota limit on its own quota account: tokens as tokens, money in millionths", async () => {
    const quota = new MemoryQuotaReservator();
    const keys = new ApiKeys({ store: new MemoryApiKeyStore(), secret, quota });
    const tokens = await keys.create({ owner, name: "t", scopes: [], quota: { unit: "tokens", limit: 500 } });
    expect(await quota.balance(apiKeyQuotaAccount(tokens.key.id))).toEqual({
      limit: 500,
      spent: 0,
      held: 0,
      available: 500,
    });
    const money = await keys.create({
      owner,
      name: "m",
      scopes: [],
      quota: { unit: "money", currency: "USD", limit: "12.5" },
    });
    expect((await keys.quotaBalance(money.key))?.limit).toBe(12_500_000);
    const none = await keys.create({ owner, name: "n", scopes: [] });
    expect(await keys.quotaBalance(none.key)).toBeUndefined();
  });

  it("refuses a quota without a reservator, a past expiry and bad fields, naming the field", async () => {
    const keys = new ApiKeys({
      store: new MemoryApiKeyStore(),
      secret,
      clock: () => Date.parse("2026-03-01T00:00:00Z"),
    });
    const field = async (input: unknown) => {
      const error = await keys.create(input as never).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LatchValidationError);
      return (error as LatchValidationError).issues.map((i) => i.path);
    };
    expect(await field({ owner, name: "q", scopes: [], quota: { unit: "tokens", limit: 1 } })).toEqual([
      "quota",
    ]);
    expect(await field({ owner, name: "e", scopes: [], expiresAt: "2026-02-01T00:00:00Z" })).toEqual([
      "expiresAt",
    ]);
    expect(await field({ owner, name: "s", scopes: ["billing:read", "billing:read"] })).toEqual(["scopes"]);
    expect(await field({ owner, name: "", scopes: [] })).toEqual(["name"]);
    expect(await field({ owner: {}, name: "o", scopes: [] })).toEqual(["owner.tenantId"]);
  });

  it("hands out the plaintext only in the result of create", async () => {
    const store = new MemoryApiKeyStore();
    const keys = new ApiKeys({ store, secret });
    const { key, plaintext } = await keys.create({
      owner,
      name: "k",
      scopes: ["billing:read"],
      mode: "test",
    });
    expect(plaintext.startsWith("latch_test_")).toBe(true);
    expect(JSON.stringify(await keys.get(owner, key.id))).not.toContain(plaintext.slice(11, 43));
    expect(JSON.stringify(await keys.list(owner, { limit: 10 }))).not.toContain(plaintext.slice(11, 43));
  });
});
