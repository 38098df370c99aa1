import { PGlite } from "@electric-sql/pglite";
import { ApiKeys } from "@latch/core";
import { generateApiKeyId } from "@latch/core/adapter";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromPglite, migrate, PostgresApiKeyStore, type Queryable } from "../src/index.js";

// Migration 0012 (key lineage) beyond the conformance suite: the cascade is the schema's, so a
// release from before it (which knows no created_by and revokes with a plain UPDATE) cascades
// too and still parses every row; and a lineage thousands of keys deep revokes in one call.
const schema = "latch";
const secret = "postgres-lineage-secret-postgres-lineage-01";
let pglite: PGlite;
let db: Queryable;
const owner = { tenantId: "acme" };

beforeAll(async () => {
  pglite = new PGlite();
  db = fromPglite(pglite);
  await migrate(db, { schema });
}, 60_000);
afterAll(async () => {
  await pglite.close();
});

describe("API key lineage on PostgreSQL (migration 0012)", () => {
  it("keeps createdBy out of payload, so an older release parses a minted key's row", async () => {
    const keys = new ApiKeys({ store: new PostgresApiKeyStore(db, { schema }), secret });
    const admin = await keys.create({ owner, name: "admin", scopes: ["keys:write"] });
    const minted = await keys.mint(admin.key, { owner, name: "minted", scopes: [] });
    const { rows } = await db.query(`SELECT payload, created_by FROM "${schema}".api_keys WHERE id = $1`, [
      minted.key.id,
    ]);
    const row = rows[0] as { payload: Record<string, unknown>; created_by: string };
    expect(row.created_by).toBe(admin.key.id);
    expect(row.payload).not.toHaveProperty("createdBy");
    expect(Object.keys(row.payload).sort()).toEqual(["createdAt", "id", "mode", "name", "owner", "scopes"]);
  });

  it("cascades a revoke written the way a release before 0012 writes it (a plain UPDATE)", async () => {
    const keys = new ApiKeys({ store: new PostgresApiKeyStore(db, { schema }), secret });
    const admin = await keys.create({ owner, name: "admin", scopes: ["keys:write"] });
    const child = await keys.mint(admin.key, { owner, name: "child", scopes: ["keys:write"] });
    const grandchild = await keys.mint(child.key, { owner, name: "grandchild", scopes: [] });
    // The statement of PostgresApiKeyStore.revoke as shipped with migration 0005.
    await db.query(
      `UPDATE "${schema}".api_keys SET revoked_at = coalesce(revoked_at, $3::timestamptz)
       WHERE id = $1 AND owner @> $2::jsonb RETURNING id`,
      [admin.key.id, JSON.stringify(owner), "2026-03-02T00:00:00.000Z"],
    );
    for (const { plaintext } of [admin, child, grandchild]) {
      expect(await keys.authenticate(plaintext)).toEqual({ ok: false, reason: "revoked" });
    }
  });

  it("revokes a lineage 3,000 keys deep in one call (one recursive statement, not a trigger per generation)", async () => {
    const store = new PostgresApiKeyStore(db, { schema });
    const ids = Array.from({ length: 3_000 }, () => generateApiKeyId());
    const records = ids.map((id, i) => ({
      id,
      owner,
      name: `gen ${i}`,
      scopes: [],
      mode: "live" as const,
      createdAt: "2026-03-01T00:00:00.000Z",
      ...(i === 0 ? {} : { createdBy: ids[i - 1] as string }),
    }));
    const digests = ids.map((_, i) => i.toString(16).padStart(64, "0"));
    await db.query(
      `INSERT INTO "${schema}".api_keys (id, digest, tenant_id, owner, hash, payload, created_by)
       SELECT r->>'id', d, 'acme', r->'owner', 'h', r - 'createdBy', r->>'createdBy'
       FROM unnest($1::jsonb[], $2::text[]) AS t(r, d)`,
      [records.map((r) => JSON.stringify(r)), digests],
    );
    await store.revoke(owner, ids[0] as string, "2026-03-02T00:00:00Z");
    const { rows } = await db.query(
      `SELECT count(*)::int AS n FROM "${schema}".api_keys WHERE id = ANY($1) AND revoked_at = $2::timestamptz`,
      [ids, "2026-03-02T00:00:00Z"],
    );
    expect((rows[0] as { n: number }).n).toBe(3_000);
    expect((await store.get(owner, ids[2_999] as string))?.createdBy).toBe(ids[2_998]);
  }, 60_000);
});
