import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ApiKeyHasher, apiKeyQuotaUnits, generateApiKeyId, parseApiKey } from "../../src/adapter.js";
import { crc32, generateApiKey } from "../../src/api-keys/format.js";
import { LatchError } from "../../src/index.js";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

describe("API key format", () => {
  it("computes the standard CRC-32 check value", () => {
    expect(crc32("123456789")).toBe(0xcbf43926);
    expect(crc32("")).toBe(0);
  });

  it("issues keys with a readable prefix, 32 random base62 characters and a checksum", () => {
    for (const mode of ["live", "test"] as const) {
      const key = generateApiKey(mode);
      expect(key).toMatch(new RegExp(`^latch_${mode}_[0-9A-Za-z]{38}$`));
      expect(parseApiKey(key)).toEqual({ mode, body: key.slice(11, 43) });
    }
  });

  it("draws bodies uniformly enough that 2,000 keys are distinct and use the whole alphabet", () => {
    const bodies = Array.from({ length: 2_000 }, () => parseApiKey(generateApiKey("live"))?.body ?? "");
    expect(new Set(bodies).size).toBe(2_000);
    const counts = new Map<string, number>();
    for (const body of bodies) for (const c of body) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    // 64,000 characters over 62 symbols: ~1,032 each; a folded (biased) draw would skew the low symbols.
    for (const n of counts.values()) expect(n).toBeGreaterThan(850);
    for (const n of counts.values()) expect(n).toBeLessThan(1_220);
  });

  it("rejects every single-character typo of a key", () => {
    const key = generateApiKey("live");
    for (let i = 11; i < key.length; i++) {
      for (const c of ALPHABET) {
        if (c === key[i]) continue;
        expect(parseApiKey(key.slice(0, i) + c + key.slice(i + 1))).toBeUndefined();
      }
    }
  });

  it("rejects anything that is not a whole key", () => {
    const key = generateApiKey("test");
    for (const bad of [
      "",
      key.slice(0, -1),
      `${key}0`,
      ` ${key}`,
      key.replace("latch_test_", "latch_prod_"),
      key.replace("latch_test_", "latch_live_"), // the checksum covers the prefix
      42,
      null,
    ]) {
      expect(parseApiKey(bad)).toBeUndefined();
    }
  });

  it("accepts random strings only when their checksum happens to match (property)", () => {
    fc.assert(
      fc.property(fc.string({ minLength: 38, maxLength: 38, unit: fc.constantFrom(...ALPHABET) }), (tail) => {
        const parsed = parseApiKey(`latch_live_${tail}`);
        const sum = tail.slice(32);
        let n = crc32(`latch_live_${tail.slice(0, 32)}`);
        let expected = "";
        for (let i = 0; i < 6; i++) {
          expected = ALPHABET[n % 62] + expected;
          n = Math.floor(n / 62);
        }
        expect(parsed !== undefined).toBe(sum === expected);
      }),
    );
  });

  it("issues key ids that are not secret and not derived from the key", () => {
    expect(generateApiKeyId()).toMatch(/^key_[0-9A-Za-z]{24}$/);
  });
});

describe("ApiKeyHasher", () => {
  it("needs a secret of at least 32 bytes", () => {
    expect(() => new ApiKeyHasher("short")).toThrow(LatchError);
    expect(() => new ApiKeyHasher(new Uint8Array(32))).not.toThrow();
  });

  it("digests with HMAC-SHA256 under the secret", () => {
    const a = new ApiKeyHasher("a".repeat(32));
    const b = new ApiKeyHasher("b".repeat(32));
    const key = generateApiKey("live");
    expect(a.digest(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(a.digest(key)).toBe(a.digest(key));
    expect(a.digest(key)).not.toBe(b.digest(key));
    expect(ApiKeyHasher.equal(a.digest(key), a.digest(key))).toBe(true);
    expect(ApiKeyHasher.equal(a.digest(key), b.digest(key))).toBe(false);
    expect(ApiKeyHasher.equal("x", "x")).toBe(false);
  });
});

describe("key quotas", () => {
  it("counts tokens as tokens and money in millionths of the currency", () => {
    expect(apiKeyQuotaUnits({ unit: "tokens", limit: 500 })).toBe(500);
    expect(apiKeyQuotaUnits({ unit: "money", currency: "USD", limit: "25.5" })).toBe(25_500_000);
    expect(apiKeyQuotaUnits({ unit: "money", currency: "USD", limit: "0.000001" })).toBe(1);
    expect(apiKeyQuotaUnits({ unit: "money", currency: "JPY", limit: "999999999.999999" })).toBe(
      999_999_999_999_999,
    );
  });
});
