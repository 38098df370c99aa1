import { randomBytes } from "node:crypto";
import { type ApiKeyRecord, ApiKeys, type BillingSubject } from "@latch/core";
import { ApiKeyHasher, type ApiKeyStore, generateApiKeyId, parseApiKey } from "@latch/core/adapter";
import { beforeEach, describe, expect, it } from "vitest";
import { abortedSignal, expectInvalidInput, expectLatchError } from "../expect-errors.js";
import { uniqueId } from "../fixtures.js";
import { type ConformanceSuite, type DescribeOptions, describeSuite, type SuiteOptions } from "../suite.js";
import { apiKeyStoreStringCases } from "./strings.js";

/** Reads the backend directly, without going through the adapter under test. */
export interface ApiKeyStoreInspector {
  /**
   * Everything the backend holds for the key `id` as text (every column of its row, every
   * field of its hash), or undefined when it holds nothing. Used to prove no plaintext is kept.
   */
  rawKey(id: string): Promise<string | undefined>;
}

export interface ApiKeyStoreSuiteOptions extends SuiteOptions<ApiKeyStore> {
  /** An independent raw reader of the backend; when given, the no-plaintext check also reads it. */
  inspect?: ApiKeyStoreInspector;
}

const SECRET = "testkit-secret-testkit-secret-testkit-secret";
const hex = (c: string) => c.repeat(64);

/**
 * The `ApiKeyStore` contract as a vitest suite: idempotent inserts and conflicts, lookup by
 * digest, owner scoping (another tenant's key does not exist for you), paging, revoke once,
 * `touch` at most once per interval under concurrency, revocation cascading to minted keys
 * (`createdBy`, transitively, also against a racing mint), input validation; and, through
 * `ApiKeys`, issuing and authenticating keys with no plaintext kept and no lookup for a bad
 * checksum. Every test always runs; none can be switched off.
 *
 * @example
 * runConformance({
 *   name: "memory",
 *   suites: [apiKeyStoreSuite({ create: () => new MemoryApiKeyStore() })],
 * });
 */
export function apiKeyStoreSuite(options: ApiKeyStoreSuiteOptions): ConformanceSuite {
  return { name: "ApiKeyStore", register: (title) => apiKeyStoreTests(title, options) };
}

/**
 * `apiKeyStoreSuite` registered on its own, titled `ApiKeyStore: <name>`.
 *
 * @deprecated Use `runConformance({ name, suites: [apiKeyStoreSuite(options)] })`.
 */
export function describeApiKeyStore(options: ApiKeyStoreSuiteOptions & DescribeOptions): void {
  describeSuite(apiKeyStoreSuite(options), options);
}

function apiKeyStoreTests(title: string, options: ApiKeyStoreSuiteOptions): void {
  describe(title, () => {
    let store: ApiKeyStore;
    let tenantId: string;
    let owner: BillingSubject;

    beforeEach(async () => {
      store = await options.create();
      tenantId = uniqueId("tenant");
      owner = { tenantId };
    });

    /** A fresh digest (64 hex characters). */
    const digest = () => randomBytes(32).toString("hex");
    const record = (overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
      id: generateApiKeyId(),
      owner,
      name: "ci",
      scopes: ["billing:read", "usage:read"],
      mode: "live",
      createdAt: "2026-03-01T12:00:00.000Z",
      ...overrides,
    });

    apiKeyStoreStringCases({ store: () => store, record, digest });

    it("stores a key and finds it by digest; get and list return the record", async () => {
      const r = record({ quota: { unit: "tokens", limit: 500 }, expiresAt: "2027-01-01T00:00:00.000Z" });
      const d = digest();
      expect(await store.insert(r, d)).toBe("created");
      expect(await store.findByDigest(d)).toEqual({ record: r, digest: d });
      expect(await store.findByDigest(digest())).toBeUndefined();
      expect(await store.get(owner, r.id)).toEqual(r);
      expect(await store.list(owner, { limit: 10 })).toEqual({ items: [r] });
    });

    it("round-trips a quota's budget period (calendar with a zone, calendar without, rolling)", async () => {
      const periods = [
        { unit: "tokens", limit: 500, period: { every: "day", timeZone: "Europe/Berlin" } },
        { unit: "money", currency: "EUR", limit: "25.5", period: { every: "month" } },
        { unit: "tokens", limit: 7, period: { rollingMs: 3_600_000 } },
      ] as const;
      for (const quota of periods) {
        const r = record({ quota: structuredClone(quota) as ApiKeyRecord["quota"] });
        const d = digest();
        expect(await store.insert(r, d)).toBe("created");
        expect((await store.findByDigest(d))?.record.quota).toEqual(quota);
        expect((await store.get(owner, r.id))?.quota).toEqual(quota);
        // The period is part of the key: the same insert is a retry, another period a conflict.
        expect(await store.insert(r, d)).toBe("already_exists");
        const other = { ...r, quota: { ...r.quota, period: { every: "week" } } } as ApiKeyRecord;
        await expectLatchError(store.insert(other, d), "idempotency_conflict");
      }
      const listed = (await store.list(owner, { limit: 10 })).items.map((k) => k.quota);
      expect(listed).toHaveLength(3);
      for (const quota of periods) expect(listed).toContainEqual(quota);
    });

    it("normalises timestamps to milliseconds in UTC", async () => {
      const r = record({ createdAt: "2026-03-01T12:00:00Z" });
      const d = digest();
      await store.insert(r, d);
      expect((await store.get(owner, r.id))?.createdAt).toBe("2026-03-01T12:00:00.000Z");
    });

    it("treats the same insert again as a retry, and another record or digest under the id as a conflict", async () => {
      const r = record();
      const d = digest();
      expect(await store.insert(r, d)).toBe("created");
      expect(await store.insert(r, d)).toBe("already_exists");
      await expectLatchError(store.insert({ ...r, name: "other" }, d), "idempotency_conflict");
      await expectLatchError(store.insert(r, digest()), "idempotency_conflict");
      expect(await store.get(owner, r.id)).toEqual(r);
      expect(await store.findByDigest(d)).toEqual({ record: r, digest: d });
    });

    it("refuses a second key with a digest that is already stored", async () => {
      const d = digest();
      await store.insert(record(), d);
      const other = record();
      await expectLatchError(store.insert(other, d), "idempotency_conflict");
      expect(await store.get(owner, other.id)).toBeUndefined();
    });

    it("shows a key only within its owner: another tenant can neither read, list nor revoke it", async () => {
      const r = record();
      await store.insert(r, digest());
      const stranger = { tenantId: uniqueId("tenant") };
      expect(await store.get(stranger, r.id)).toBeUndefined();
      expect(await store.list(stranger, { limit: 10 })).toEqual({ items: [] });
      expect(await store.revoke(stranger, r.id, "2026-03-02T00:00:00Z")).toBeUndefined();
      expect((await store.get(owner, r.id))?.revokedAt).toBeUndefined();
      // A tenant-wide owner sees a project's key; another project of the tenant does not.
      const project = record({ owner: { tenantId, projectId: "p1" } });
      await store.insert(project, digest());
      expect(await store.get(owner, project.id)).toEqual(project);
      expect(await store.get({ tenantId, projectId: "p1" }, project.id)).toEqual(project);
      expect(await store.get({ tenantId, projectId: "p2" }, project.id)).toBeUndefined();
      expect(await store.get({ tenantId, projectId: "p1" }, r.id)).toBeUndefined();
      expect((await store.list({ tenantId, projectId: "p2" }, { limit: 10 })).items).toEqual([]);
    });

    it("lists every key of an owner once, in id order, across many pages", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 23; i++) {
        const r = record({ name: `key ${i}` });
        ids.push(r.id);
        await store.insert(r, digest());
      }
      await store.insert(record({ owner: { tenantId: uniqueId("tenant") } }), digest());
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 100; pages++) {
        const page = await store.list(owner, { limit: 5, ...(cursor === undefined ? {} : { cursor }) });
        expect(page.items.length).toBeLessThanOrEqual(5);
        seen.push(...page.items.map((k) => k.id));
        if (page.next === undefined) break;
        cursor = page.next;
      }
      expect(seen).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    });

    it("revokes once: revoking again keeps the first time", async () => {
      const r = record();
      const d = digest();
      await store.insert(r, d);
      expect(await store.revoke(owner, r.id, "2026-03-02T00:00:00Z")).toEqual({
        ...r,
        revokedAt: "2026-03-02T00:00:00.000Z",
      });
      expect((await store.revoke(owner, r.id, "2026-03-03T00:00:00Z"))?.revokedAt).toBe(
        "2026-03-02T00:00:00.000Z",
      );
      expect((await store.findByDigest(d))?.record.revokedAt).toBe("2026-03-02T00:00:00.000Z");
      expect(await store.revoke(owner, generateApiKeyId(), "2026-03-02T00:00:00Z")).toBeUndefined();
      expect(await store.insert(r, d)).toBe("already_exists"); // a retried insert after a revoke
    });

    it("keeps the minting key's id (createdBy) on the record", async () => {
      const minter = record();
      const minted = record({ createdBy: minter.id, owner: { tenantId, projectId: "p1" } });
      const d = digest();
      await store.insert(minter, digest());
      expect(await store.insert(minted, d)).toBe("created");
      expect(await store.get(owner, minted.id)).toEqual(minted);
      expect(await store.findByDigest(d)).toEqual({ record: minted, digest: d });
      expect((await store.list({ tenantId, projectId: "p1" }, { limit: 10 })).items).toEqual([minted]);
      expect(await store.insert(minted, d)).toBe("already_exists");
      await expectLatchError(store.insert({ ...minted, createdBy: record().id }, d), "idempotency_conflict");
      await expectInvalidInput(store.insert(record({ createdBy: "bad id!" }), digest()), "createdBy");
    });

    it("revoking a key revokes every key it minted, transitively, at the same time, and nothing else", async () => {
      // root ─┬─ child ─── grandchild ─── great-grandchild
      //       └─ early (revoked before)   sibling: minted by another key; unrelated: no minter
      const root = record();
      const other = record();
      const child = record({ createdBy: root.id });
      const early = record({ createdBy: root.id });
      const grandchild = record({ createdBy: child.id, owner: { tenantId, projectId: "p1" } });
      const greatGrandchild = record({ createdBy: grandchild.id, owner: { tenantId, projectId: "p1" } });
      const sibling = record({ createdBy: other.id });
      const unrelated = record();
      for (const r of [root, other, child, early, grandchild, greatGrandchild, sibling, unrelated]) {
        await store.insert(r, digest());
      }
      await store.revoke(owner, early.id, "2026-03-01T13:00:00Z");
      const revoked = await store.revoke(owner, root.id, "2026-03-02T00:00:00Z");
      expect(revoked?.revokedAt).toBe("2026-03-02T00:00:00.000Z");
      const revokedAt = async (id: string) => (await store.get(owner, id))?.revokedAt;
      for (const r of [child, grandchild, greatGrandchild]) {
        expect(await revokedAt(r.id)).toBe("2026-03-02T00:00:00.000Z");
      }
      expect(await revokedAt(early.id)).toBe("2026-03-01T13:00:00.000Z");
      for (const r of [other, sibling, unrelated]) expect(await revokedAt(r.id)).toBeUndefined();
    });

    it("revoking a minted key revokes its own minted keys, not its minter", async () => {
      const root = record();
      const child = record({ createdBy: root.id });
      const grandchild = record({ createdBy: child.id });
      for (const r of [root, child, grandchild]) await store.insert(r, digest());
      await store.revoke(owner, child.id, "2026-03-02T00:00:00Z");
      expect((await store.get(owner, grandchild.id))?.revokedAt).toBe("2026-03-02T00:00:00.000Z");
      expect((await store.get(owner, root.id))?.revokedAt).toBeUndefined();
    });

    it("stores a key minted by an already revoked key as revoked at its minter's time", async () => {
      const root = record();
      await store.insert(root, digest());
      await store.revoke(owner, root.id, "2026-03-02T00:00:00Z");
      const late = record({ createdBy: root.id });
      const d = digest();
      expect(await store.insert(late, d)).toBe("created");
      expect((await store.findByDigest(d))?.record.revokedAt).toBe("2026-03-02T00:00:00.000Z");
      expect(await store.insert(late, d)).toBe("already_exists");
    });

    it("leaves no key minted by a revoked key live when mints race the revoke", async () => {
      const root = record();
      await store.insert(root, digest());
      const minted = Array.from({ length: 40 }, () => record({ createdBy: root.id }));
      await Promise.all([
        ...minted.map((r) => store.insert(r, digest())),
        store.revoke(owner, root.id, "2026-03-02T00:00:00Z"),
      ]);
      for (const r of minted) {
        expect((await store.get(owner, r.id))?.revokedAt, r.id).toBe("2026-03-02T00:00:00.000Z");
      }
    });

    it("writes lastUsedAt at most once per interval, once among 100 concurrent touches", async () => {
      const r = record();
      await store.insert(r, digest());
      const at = "2026-03-01T12:00:00.000Z";
      const writes = await Promise.all(Array.from({ length: 100 }, () => store.touch(r.id, at, 60_000)));
      expect(writes.filter(Boolean)).toHaveLength(1);
      expect((await store.get(owner, r.id))?.lastUsedAt).toBe(at);
      expect(await store.touch(r.id, "2026-03-01T12:00:59.999Z", 60_000)).toBe(false);
      expect(await store.touch(r.id, "2026-03-01T12:01:00.000Z", 60_000)).toBe(true);
      expect((await store.get(owner, r.id))?.lastUsedAt).toBe("2026-03-01T12:01:00.000Z");
      expect(await store.touch(generateApiKeyId(), at, 60_000)).toBe(false);
    });

    it("rejects bad input naming the field", async () => {
      await expectInvalidInput(store.insert(record(), "not-a-digest"), "digest");
      await expectInvalidInput(store.insert(record({ scopes: ["Bad Scope"] }), digest()), "scopes.0");
      await expectInvalidInput(
        store.insert(record({ quota: { unit: "tokens", limit: "500" as unknown as number } }), digest()),
        "quota.limit",
      );
      await expectInvalidInput(store.insert(record({ createdAt: "yesterday" }), digest()), "createdAt");
      await expectInvalidInput(store.findByDigest(hex("G")), "digest");
      await expectInvalidInput(store.list(owner, { limit: 1_001 }), "limit");
      await expectInvalidInput(store.list({} as BillingSubject, { limit: 1 }), "owner.tenantId");
      await expectInvalidInput(store.get(owner, "bad id!"), "id");
      await expectInvalidInput(store.revoke(owner, generateApiKeyId(), "soon"), "at");
      await expectInvalidInput(store.touch(generateApiKeyId(), "2026-03-01T00:00:00Z", -1), "minIntervalMs");
      await expect(store.findByDigest(hex("a"), abortedSignal())).rejects.toThrow();
    });

    describe("through ApiKeys", () => {
      /** Counts the store's digest lookups. */
      function counting(inner: ApiKeyStore): { store: ApiKeyStore; lookups: () => number } {
        let lookups = 0;
        const wrapped: ApiKeyStore = {
          ...bind(inner),
          findByDigest: (...a) => {
            lookups += 1;
            return inner.findByDigest(...a);
          },
        };
        return { store: wrapped, lookups: () => lookups };
      }

      it("issues a key shown once, authenticates it, and keeps neither the key nor its body", async () => {
        const keys = new ApiKeys({ store, secret: SECRET });
        const { key, plaintext } = await keys.create({ owner, name: "ci", scopes: ["billing:read"] });
        expect(plaintext.startsWith("latch_live_")).toBe(true);
        expect(key).not.toHaveProperty("plaintext");
        expect(await keys.authenticate(plaintext)).toEqual({ ok: true, key });
        const body = parseApiKey(plaintext)?.body as string;
        expect(body).toHaveLength(32);
        const stored = JSON.stringify(await store.findByDigest(new ApiKeyHasher(SECRET).digest(plaintext)));
        expect(stored).not.toContain(body);
        if (options.inspect !== undefined) {
          const raw = await options.inspect.rawKey(key.id);
          expect(raw).toBeDefined();
          expect(raw).not.toContain(plaintext);
          expect(raw).not.toContain(body);
        }
        await keys.flush();
      });

      it("refuses malformed keys and bad checksums without a lookup, and unknown keys after one", async () => {
        const counted = counting(store);
        const keys = new ApiKeys({ store: counted.store, secret: SECRET });
        const { plaintext } = await keys.create({ owner, name: "ci", scopes: [] });
        const last = plaintext.at(-1) === "a" ? "b" : "a";
        const mistyped = plaintext.slice(0, -1) + last;
        for (const bad of [
          mistyped,
          "",
          "latch_live_",
          "Bearer x",
          plaintext.toUpperCase(),
          `${plaintext}x`,
        ]) {
          expect(await keys.authenticate(bad)).toEqual({ ok: false, reason: "malformed" });
        }
        expect(counted.lookups()).toBe(0);
        const other = new ApiKeys({ store: counted.store, secret: `${SECRET}-other` });
        expect(await other.authenticate(plaintext)).toEqual({ ok: false, reason: "unknown" });
        expect(counted.lookups()).toBe(1);
      });

      it("refuses revoked and expired keys", async () => {
        let now = Date.parse("2026-03-01T12:00:00Z");
        const keys = new ApiKeys({ store, secret: SECRET, clock: () => now });
        const revoked = await keys.create({ owner, name: "a", scopes: [] });
        await keys.revoke(owner, revoked.key.id);
        expect(await keys.authenticate(revoked.plaintext)).toEqual({ ok: false, reason: "revoked" });
        const expiring = await keys.create({
          owner,
          name: "b",
          scopes: [],
          expiresAt: "2026-03-01T13:00:00Z",
        });
        expect((await keys.authenticate(expiring.plaintext)).ok).toBe(true);
        now = Date.parse("2026-03-01T13:00:00Z");
        expect(await keys.authenticate(expiring.plaintext)).toEqual({ ok: false, reason: "expired" });
        await keys.flush();
      });

      it("mints least-privilege keys that die with their minter", async () => {
        const keys = new ApiKeys({ store, secret: SECRET });
        const admin = await keys.create({ owner, name: "admin", scopes: ["keys:write", "billing:read"] });
        const child = await keys.mint(admin.key, { owner, name: "child", scopes: ["keys:write"] });
        expect(child.key.createdBy).toBe(admin.key.id);
        await expectLatchError(
          keys.mint(child.key, { owner, name: "x", scopes: ["billing:read"] }),
          "privilege_exceeded",
        );
        const grandchild = await keys.mint(child.key, { owner, name: "grandchild", scopes: [] });
        await expectLatchError(keys.revokeAs(child.key, admin.key.id), "privilege_exceeded");
        expect((await keys.authenticate(admin.plaintext)).ok).toBe(true);
        await keys.revoke(owner, admin.key.id);
        for (const { plaintext } of [admin, child, grandchild]) {
          expect(await keys.authenticate(plaintext)).toEqual({ ok: false, reason: "revoked" });
        }
        await keys.flush();
      });

      it("writes lastUsedAt off the request path, at most once a minute per key", async () => {
        let now = Date.parse("2026-03-01T12:00:00Z");
        let touches = 0;
        const keys = new ApiKeys({
          store: {
            ...bind(store),
            touch: (...a) => {
              touches += 1;
              return store.touch(...a);
            },
          },
          secret: SECRET,
          clock: () => now,
        });
        const { key, plaintext } = await keys.create({ owner, name: "ci", scopes: [] });
        await Promise.all(Array.from({ length: 50 }, () => keys.authenticate(plaintext)));
        await keys.flush();
        expect(touches).toBe(1);
        expect((await keys.get(owner, key.id))?.lastUsedAt).toBe("2026-03-01T12:00:00.000Z");
        now += 59_999;
        await keys.authenticate(plaintext);
        await keys.flush();
        expect(touches).toBe(1);
        now += 1;
        await keys.authenticate(plaintext);
        await keys.flush();
        expect(touches).toBe(2);
        expect((await keys.get(owner, key.id))?.lastUsedAt).toBe("2026-03-01T12:01:00.000Z");
      });
    });
  });
}

/** The store's methods bound to it, so they can be spread into a wrapper. */
function bind(store: ApiKeyStore): ApiKeyStore {
  return {
    insert: store.insert.bind(store),
    findByDigest: store.findByDigest.bind(store),
    get: store.get.bind(store),
    list: store.list.bind(store),
    revoke: store.revoke.bind(store),
    touch: store.touch.bind(store),
  };
}
