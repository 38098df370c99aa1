import { describe, expect, it, vi } from "vitest";
import type { ApiKeyStore } from "../../src/adapter.js";
import { generateApiKey } from "../../src/api-keys/format.js";
import { ApiKeys, LatchValidationError, MemoryApiKeyStore } from "../../src/index.js";

// `create` draws its plaintext from generateApiKey; a test can name the next one, to issue a key
// that was presented (and missed) before it existed.
const issueNext = vi.hoisted(() => ({ plaintext: undefined as string | undefined }));
vi.mock("../../src/api-keys/format.js", async (importOriginal) => {
  const real = await importOriginal<typeof import("../../src/api-keys/format.js")>();
  return {
    ...real,
    generateApiKey: (mode: "live" | "test") => {
      const next = issueNext.plaintext;
      issueNext.plaintext = undefined;
      return next ?? real.generateApiKey(mode);
    },
  };
});

const secret = "core-test-secret-core-test-secret-0123";
const owner = { tenantId: "acme" };

/** The real memory store, with its digest lookups counted. */
function counted(): { store: ApiKeyStore; lookups: () => number } {
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
  return { store, lookups: () => lookups };
}

describe("ApiKeys negative cache", () => {
  it("looks a made-up key (valid checksum) up once per TTL, however often it is presented", async () => {
    let now = Date.parse("2026-03-01T00:00:00Z");
    const { store, lookups } = counted();
    const keys = new ApiKeys({ store, secret, clock: () => now, negativeCache: { ttlMs: 60_000 } });
    const madeUp = generateApiKey("live");
    for (let i = 0; i < 1_000; i++) {
      expect(await keys.authenticate(madeUp)).toEqual({ ok: false, reason: "unknown" });
    }
    expect(lookups()).toBe(1);
    now += 60_000; // the entry has expired: one more lookup
    expect(await keys.authenticate(madeUp)).toEqual({ ok: false, reason: "unknown" });
    expect(lookups()).toBe(2);
  });

  it("is bounded: the oldest digest is evicted first", async () => {
    const { store, lookups } = counted();
    const keys = new ApiKeys({ store, secret, negativeCache: { size: 2 } });
    const [a, b, c] = [generateApiKey("live"), generateApiKey("live"), generateApiKey("test")];
    for (const k of [a, b, c]) await keys.authenticate(k);
    expect(lookups()).toBe(3);
    await keys.authenticate(c);
    await keys.authenticate(b);
    expect(lookups()).toBe(3); // b and c still cached
    await keys.authenticate(a);
    expect(lookups()).toBe(4); // a was evicted
  });

  it("never hides a key created after a miss of its digest", async () => {
    const { store, lookups } = counted();
    const keys = new ApiKeys({ store, secret });
    const future = generateApiKey("live");
    expect(await keys.authenticate(future)).toEqual({ ok: false, reason: "unknown" });
    expect(await keys.authenticate(future)).toEqual({ ok: false, reason: "unknown" });
    expect(lookups()).toBe(1); // the miss is cached
    issueNext.plaintext = future;
    const created = await keys.create({ owner, name: "later", scopes: [] });
    expect(created.plaintext).toBe(future);
    expect(await keys.authenticate(future)).toEqual({ ok: true, key: created.key });
    expect(lookups()).toBe(2);
  });

  it("still refuses revoked and expired keys", async () => {
    let now = Date.parse("2026-03-01T00:00:00Z");
    const { store } = counted();
    const keys = new ApiKeys({ store, secret, clock: () => now });
    const created = await keys.create({ owner, name: "k", scopes: [], expiresAt: "2026-03-02T00:00:00Z" });
    expect((await keys.authenticate(created.plaintext)).ok).toBe(true);
    now = Date.parse("2026-03-02T00:00:00Z");
    expect(await keys.authenticate(created.plaintext)).toEqual({ ok: false, reason: "expired" });
    const other = await keys.create({ owner, name: "r", scopes: [] });
    await keys.revoke(owner, other.key.id);
    expect(await keys.authenticate(other.plaintext)).toEqual({ ok: false, reason: "revoked" });
  });

  it("turns off with size 0, and refuses bad settings naming the field", async () => {
    const { store, lookups } = counted();
    const keys = new ApiKeys({ store, secret, negativeCache: { size: 0 } });
    const madeUp = generateApiKey("live");
    for (let i = 0; i < 3; i++) await keys.authenticate(madeUp);
    expect(lookups()).toBe(3);
    for (const negativeCache of [{ size: -1 }, { ttlMs: 0 }, { ttlMs: 1.5 }]) {
      let error: unknown;
      try {
        new ApiKeys({ store, secret, negativeCache });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LatchValidationError);
      expect((error as LatchValidationError).issues[0]?.path).toMatch(/^negativeCache\./);
    }
  });
});

describe("ApiKeys.recheck", () => {
  it("re-reads the key: ok while valid, then revoked, expired or unknown", async () => {
    let now = Date.parse("2026-03-01T00:00:00Z");
    const keys = new ApiKeys({ store: new MemoryApiKeyStore(), secret, clock: () => now });
    const a = await keys.create({ owner, name: "a", scopes: [], expiresAt: "2026-03-02T00:00:00Z" });
    expect(await keys.recheck(a.key)).toEqual({ ok: true, key: a.key });
    now = Date.parse("2026-03-02T00:00:00Z");
    expect(await keys.recheck(a.key)).toEqual({ ok: false, reason: "expired" });
    const b = await keys.create({ owner, name: "b", scopes: [] });
    await keys.revoke(owner, b.key.id);
    expect(await keys.recheck(b.key)).toEqual({ ok: false, reason: "revoked" });
    expect(await keys.recheck({ ...b.key, id: "key_000000000000000000000000" })).toEqual({
      ok: false,
      reason: "unknown",
    });
  });
});
