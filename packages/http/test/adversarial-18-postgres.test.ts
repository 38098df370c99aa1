import { randomBytes } from "node:crypto";
import { createRequire } from "node:module";
import { ApiKeys, type RatedUsageRecord } from "@latch/core";
import { createBillingApp } from "@latch/http";
import {
  migrate,
  PostgresApiKeyStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  type Queryable,
} from "@latch/postgres";
import { makeRatedRecord } from "@latch/testkit";
import { parse as parseCsv } from "csv-parse/sync";
import { afterAll, beforeEach, describe, expect, it } from "vitest";

// Adversarial review of issue 18 on a real PostgreSQL server (isolated schema, dropped after):
// revoking a parent while it mints, exports whose key is revoked or expires mid-stream, test-mode
// isolation and U+0000 / lone surrogates in a mint body. The `pg` driver is @latch/postgres's.
interface PgPool extends Queryable {
  end(): Promise<void>;
  connect(): Promise<Queryable & { release(): void }>;
}
const pg = createRequire(import.meta.resolve("@latch/postgres"))("pg") as {
  Pool: new (options: { connectionString: string; max: number; options?: string }) => PgPool;
};
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const schema = `latch_adv18_${process.pid}_${randomBytes(4).toString("hex")}`;
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
const db: Queryable = pool;
const SECRET = "adversarial-18-pg-secret-adversarial-18-pg-01";
const WINDOW = "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z";
const ALL = ["keys:read", "keys:write", "usage:read", "billing:read"];

let now = Date.parse("2026-03-10T00:00:00Z");
const store = new PostgresApiKeyStore(db, { schema });
const keys = new ApiKeys({
  store,
  secret: SECRET,
  quota: new PostgresQuota(db, { schema }),
  clock: () => now,
});
const records = new PostgresRatedRecordStore(db, { schema });
const PAGE = 20;
const app = createBillingApp({
  keys,
  records,
  exportPageSize: PAGE,
  onError: () => undefined,
  clock: () => now,
});

let ready: Promise<unknown> | undefined;
beforeEach(async () => {
  // Migrated in the first test, not a beforeAll: an unreachable server fails the tests, never skips them.
  ready ??= migrate(db, { schema });
  await ready;
}, 60_000);
// Sessions that default to REPEATABLE READ (a common managed setting): the cascade's triggers
// must still see a key whose insert committed while the revoke waited for it.
const rrPool = new pg.Pool({
  connectionString: DATABASE_URL,
  max: 8,
  options: "-c default_transaction_isolation=repeatable\\ read",
});
afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  await rrPool.end();
});

function recordsOf(tenantId: string, count: number, prefix: string): RatedUsageRecord[] {
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

async function call(key: string, method: string, path: string, body?: unknown) {
  return app.request(path, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

/** Reads the first chunk, runs `between`, then reads the rest. */
async function readAround(response: Response, between: () => Promise<void>): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = decoder.decode((await reader.read()).value, { stream: true });
  await between();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

describe("adversarial review of issue 18 on a PostgreSQL server", () => {
  it("a parent revoked while it mints (40 rounds, concurrently): once both return, no minted key is live", async () => {
    const tenant = `race-${randomBytes(4).toString("hex")}`;
    const admin = await keys.create({ owner: { tenantId: tenant }, name: "admin", scopes: ALL });
    const rounds = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const parent = await keys.create({
          owner: { tenantId: tenant },
          name: `p${i}`,
          scopes: ["keys:write", "billing:read"],
        });
        const [minted, revoked] = await Promise.all([
          call(parent.plaintext, "POST", "/api/billing/keys", { name: "c", scopes: ["billing:read"] }),
          call(admin.plaintext, "DELETE", `/api/billing/keys/${parent.key.id}`),
        ]);
        expect(revoked.status).toBe(200);
        if (minted.status !== 201) {
          expect(minted.status).toBe(401);
          return "refused";
        }
        const { secret } = (await minted.json()) as { secret: string };
        expect(await keys.authenticate(secret), `round ${i}`).toEqual({ ok: false, reason: "revoked" });
        return "cascaded";
      }),
    );
    expect(rounds).toHaveLength(40);
  }, 60_000);

  it("under default_transaction_isolation = repeatable read, mint racing revoke (40 rounds) leaves no minted key live", async () => {
    const rr = new ApiKeys({
      store: new PostgresApiKeyStore(rrPool, { schema }),
      secret: SECRET,
      clock: () => now,
    });
    const { rows } = await rrPool.query("SHOW default_transaction_isolation");
    expect((rows[0] as { default_transaction_isolation: string }).default_transaction_isolation).toBe(
      "repeatable read",
    );
    const owner = { tenantId: `rr-${randomBytes(4).toString("hex")}` };
    const outcomes = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const parent = await rr.create({ owner, name: `p${i}`, scopes: ["keys:write"] });
        const [minted] = await Promise.allSettled([
          rr.mint(parent.key, { owner, name: "c", scopes: [] }),
          rr.revoke(owner, parent.key.id),
        ]);
        if (minted.status === "rejected") return "refused";
        expect((await rr.authenticate(minted.value.plaintext)).ok, `round ${i}`).toBe(false);
        return "cascaded";
      }),
    );
    expect(outcomes).toHaveLength(40);
  }, 60_000);

  it("a revoke that waits for a minted key's open insert cascades to it once it commits (repeatable-read sessions)", async () => {
    const owner = { tenantId: `wait-${randomBytes(4).toString("hex")}` };
    const rrStore = new PostgresApiKeyStore(rrPool, { schema });
    const rr = new ApiKeys({ store: rrStore, secret: SECRET, clock: () => now });
    const parent = await rr.create({ owner, name: "p", scopes: ["keys:write"] });
    const childId = `key_wait${randomBytes(6).toString("hex")}`;
    const client = await rrPool.connect();
    try {
      // The minted key's insert, held open: its trigger holds FOR SHARE on the parent's row.
      await client.query("BEGIN");
      await client.query(
        `INSERT INTO "${schema}".api_keys (id, digest, tenant_id, owner, hash, payload, created_by)
         VALUES ($1, $2, $3, $4::jsonb, 'h', $5::jsonb, $6)`,
        [
          childId,
          randomBytes(32).toString("hex"),
          owner.tenantId,
          JSON.stringify(owner),
          JSON.stringify({
            id: childId,
            owner,
            name: "c",
            scopes: [],
            mode: "live",
            createdAt: "2026-03-10T00:00:00.000Z",
          }),
          parent.key.id,
        ],
      );
      const revoking = rr.revoke(owner, parent.key.id);
      // Wait until the revoke is blocked on the parent's row lock, then commit the insert (up to
      // ~20 s: on a loaded machine the revoke may take seconds to get there; was ~5 s).
      let blocked = false;
      for (let i = 0; i < 400 && !blocked; i++) {
        const { rows } = await pool.query(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1",
          [`%"${schema}".api_keys SET revoked_at%`],
        );
        blocked = (rows[0] as { n: number }).n > 0;
        if (!blocked) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(blocked).toBe(true);
      await client.query("COMMIT");
      expect((await revoking)?.revokedAt).toBeDefined();
    } finally {
      client.release();
    }
    expect((await rrStore.get(owner, childId))?.revokedAt).toBeDefined();
  }, 60_000);

  it("20 concurrent mints of 10 tokens from a 50-token key: exactly 5 are issued", async () => {
    const tenant = `carve-${randomBytes(4).toString("hex")}`;
    const parent = await keys.create({
      owner: { tenantId: tenant },
      name: "budget",
      scopes: ["keys:write"],
      quota: { unit: "tokens", limit: 50 },
    });
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const r = await call(parent.plaintext, "POST", "/api/billing/keys", {
          name: "c",
          scopes: [],
          quota: { unit: "tokens", limit: 10 },
        });
        await r.arrayBuffer();
        return r.status;
      }),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.filter((s) => s !== 201).every((s) => s === 403)).toBe(true);
    expect(await keys.quotaBalance(parent.key)).toMatchObject({ available: 0, spent: 50, held: 0 });
  }, 60_000);

  it("an export whose key is revoked mid-stream ends with the error line (JSONL and CSV)", async () => {
    const tenant = `rev-${randomBytes(4).toString("hex")}`;
    await records.putMany(recordsOf(tenant, 200, tenant));
    for (const format of ["jsonl", "csv"] as const) {
      const reader = await keys.create({ owner: { tenantId: tenant }, name: "r", scopes: ["billing:read"] });
      const response = await call(reader.plaintext, "GET", `/billing/export?${WINDOW}&format=${format}`);
      expect(response.status).toBe(200);
      const text = await readAround(response, async () => {
        await keys.revoke({ tenantId: tenant }, reader.key.id);
      });
      if (format === "jsonl") {
        const lines = text.split("\n").filter(Boolean);
        expect(JSON.parse(lines.at(-1) as string).error.status).toBe(401);
        expect(lines.length - 1).toBeLessThanOrEqual(3 * PAGE);
      } else {
        const rows = parseCsv(text) as string[][];
        expect(rows.at(-1)?.slice(0, 3)).toEqual(["#error", "urn:latch:problem:unauthorized", "401"]);
        expect(rows.length - 2).toBeLessThanOrEqual(3 * PAGE);
      }
    }
  });

  it("an export by a minted key ends with the error line when its minter is revoked mid-stream", async () => {
    const tenant = `casc-${randomBytes(4).toString("hex")}`;
    await records.putMany(recordsOf(tenant, 200, tenant));
    const parent = await keys.create({
      owner: { tenantId: tenant },
      name: "p",
      scopes: ["keys:write", "billing:read"],
    });
    const minted = await call(parent.plaintext, "POST", "/api/billing/keys", {
      name: "c",
      scopes: ["billing:read"],
    });
    const { secret } = (await minted.json()) as { secret: string };
    const response = await call(secret, "GET", `/billing/export?${WINDOW}&format=jsonl`);
    const text = await readAround(response, async () => {
      await keys.revoke({ tenantId: tenant }, parent.key.id);
    });
    const lines = text.split("\n").filter(Boolean);
    expect(JSON.parse(lines.at(-1) as string).error.status).toBe(401);
    expect(lines.length - 1).toBeLessThanOrEqual(3 * PAGE);
  });

  it("an export whose key expires mid-stream ends with the error line", async () => {
    const tenant = `exp-${randomBytes(4).toString("hex")}`;
    await records.putMany(recordsOf(tenant, 200, tenant));
    const reader = await keys.create({
      owner: { tenantId: tenant },
      name: "short",
      scopes: ["billing:read"],
      expiresAt: new Date(now + 60_000).toISOString(),
    });
    const response = await call(reader.plaintext, "GET", `/billing/export?${WINDOW}&format=jsonl`);
    const text = await readAround(response, async () => {
      now += 60_000;
    });
    const lines = text.split("\n").filter(Boolean);
    expect(JSON.parse(lines.at(-1) as string).error.status).toBe(401);
    expect(lines.length - 1).toBeLessThan(200);
  });

  it("a test-mode key (245-character tenant: a 256-character twin) reads only its twin's rows", async () => {
    const tenant = `t${randomBytes(4).toString("hex")}`.padEnd(245, "x");
    const twin = `latch-test:${tenant}`;
    expect(twin).toHaveLength(256);
    await records.putMany([...recordsOf(tenant, 3, "live"), ...recordsOf(twin, 2, "test")]);
    const live = await keys.create({ owner: { tenantId: tenant }, name: "l", scopes: ALL });
    const minted = await call(live.plaintext, "POST", "/api/billing/keys", {
      name: "t",
      scopes: ["billing:read", "keys:read"],
      mode: "test",
    });
    expect(minted.status).toBe(201);
    const { secret } = (await minted.json()) as { secret: string };
    const exported = await (await call(secret, "GET", `/billing/export?${WINDOW}&format=jsonl`)).text();
    const ids = exported
      .split("\n")
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { event_id: string }).event_id.slice(0, 4));
    expect(ids).toEqual(["test", "test"]);
    const liveExport = await (
      await call(live.plaintext, "GET", `/billing/export?${WINDOW}&format=jsonl`)
    ).text();
    expect(liveExport).not.toContain('"test-');
    expect((await call(secret, "GET", `/api/billing/keys/${live.key.id}`)).status).toBe(404);
  });

  it("U+0000 (and an encoded surrogate) in a query, path or cursor of key and report routes is never a 500", async () => {
    const tenant = `nulq-${randomBytes(4).toString("hex")}`;
    const admin = await keys.create({ owner: { tenantId: tenant }, name: "admin", scopes: ALL });
    const paths = [
      `/billing/lines?${WINDOW}&model=a%00b`,
      `/billing/lines?${WINDOW}&cursor=%00`,
      `/billing/summary?${WINDOW}&project_id=%00`,
      `/billing/export?${WINDOW}&end_user_id=%00&format=jsonl`,
      `/api/billing/usage?${WINDOW}&key_id=%00`,
      `/api/billing/usage?${WINDOW}&tenant_id=%00`,
      "/api/billing/keys?cursor=%00",
      "/api/billing/keys?tenant_id=a%00",
      "/api/billing/keys/key_%00",
    ];
    for (const path of paths) {
      const r = await call(admin.plaintext, "GET", path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(r.status, path).toBeLessThan(500);
      await r.arrayBuffer();
    }
    const del = await call(admin.plaintext, "DELETE", "/api/billing/keys/key%00");
    expect(del.status).toBeLessThan(500);
    // An encoded lone surrogate is not valid UTF-8: it decodes to U+FFFD, an ordinary filter.
    const surrogate = await call(admin.plaintext, "GET", `/billing/lines?${WINDOW}&model=%ED%A0%80`);
    expect(surrogate.status).toBe(200);
    await surrogate.arrayBuffer();
  });

  it("U+0000 and lone surrogates in a mint body are a 400 naming the field, never a 500", async () => {
    const tenant = `nul-${randomBytes(4).toString("hex")}`;
    const admin = await keys.create({ owner: { tenantId: tenant }, name: "admin", scopes: ALL });
    const bodies = [
      { name: "a\u0000b", scopes: [] },
      { name: "a\ud800b", scopes: [] },
      { name: "n", scopes: [], owner: { project_id: "p\u0000" } },
      { name: "n", scopes: [], owner: { end_user_id: "\udc00" } },
      { name: "n", scopes: [], tenant_id: "x\u0000" },
    ];
    for (const body of bodies) {
      const r = await call(admin.plaintext, "POST", "/api/billing/keys", body);
      expect([400, 404], JSON.stringify(body)).toContain(r.status);
      await r.arrayBuffer();
    }
  });
});
