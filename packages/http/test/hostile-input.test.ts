import { PGlite } from "@electric-sql/pglite";
import { fromPglite, migrate } from "@latch/postgres";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Backend, memoryBackend, postgresBackend, seedWorld } from "./fuzz-world.js";
import { type HostileTarget, ILL_FORMED_TEXT, OUT_OF_RANGE_DATES } from "./openapi-fuzz.js";

// Every text field of every operation (query, path, body, map values), taken from the served
// /openapi.json: U+0000, a lone surrogate or a year outside 1970–9999 is a 400 problem naming
// that field, the same on every backend. A query or path value reaches the server as UTF-8, so
// only U+0000 can arrive there (a lone surrogate cannot be percent-encoded); a JSON body can
// carry both.
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

const nameOf = (t: HostileTarget) => (t.in === "body" ? t.path.join(".") : t.name);

async function expectEachFieldNamed(backend: Backend): Promise<number> {
  const { app, keys, fuzzer, rng, world } = await seedWorld(backend, 18);
  const wrong: string[] = [];
  let sent = 0;
  for (const [method, path, op] of fuzzer.operations()) {
    for (const target of fuzzer.fields(op)) {
      const values = [
        ...(target.in === "body" ? ILL_FORMED_TEXT : ILL_FORMED_TEXT.filter((v) => v.includes("\u0000"))),
        ...(target.date ? OUT_OF_RANGE_DATES : []),
      ];
      for (const value of values) {
        const request = fuzzer.withField(method, path, op, world(true), rng, target, value);
        const { status, failure, body } = await fuzzer.check(app, method, path, request);
        sent += 1;
        const field = nameOf(target);
        const named =
          status === 400 &&
          (JSON.parse(body) as { "invalid-params"?: Array<{ name: string }> })["invalid-params"]?.some(
            // The field, or the object holding it (a quota's unit picks the quota's variant).
            (p) => p.name === field || field.startsWith(`${p.name}.`),
          );
        if (failure !== undefined || named !== true) {
          wrong.push(
            `${request.operation} ${request.mutations.join("; ")} → ${status} ${body.slice(0, 200)}`,
          );
        }
      }
    }
  }
  await keys.flush();
  expect(wrong.slice(0, 10), `${wrong.length} of ${sent} requests`).toEqual([]);
  return sent;
}

describe("hostile names", () => {
  it("are never echoed: a bad map key names the map, an unknown field with a strange name is (key)", async () => {
    const { app, keys, world } = await seedWorld(memoryBackend(), 18);
    const long = "k".repeat(300);
    const response = await app.request("/api/billing/credits/ledgers", {
      method: "POST",
      headers: { authorization: `Bearer ${world(true).key}`, "content-type": "application/json" },
      body: JSON.stringify({
        ledger_id: "names",
        metadata: { "FUZZ<\u0000": "v", [long]: "v" },
        [`${long}<`]: 1,
      }),
    });
    const text = await response.text();
    expect(response.status).toBe(400);
    expect(text).not.toContain("FUZZ");
    expect(text).not.toContain(long);
    expect((JSON.parse(text) as { "invalid-params": unknown[] })["invalid-params"]).toEqual(
      expect.arrayContaining([
        { name: "metadata", in: "body", reason: "a key: must not contain U+0000 or an unpaired surrogate" },
        { name: "metadata", in: "body", reason: "a key: at most 64 characters" },
        { name: "(key)", in: "body", reason: "unknown field" },
      ]),
    );
    const query = await app.request(
      "/billing/lines?from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&limt=1",
      {
        headers: { authorization: `Bearer ${world(true).key}` },
      },
    );
    expect(await query.json()).toMatchObject({
      "invalid-params": [{ name: "limt", in: "query", reason: "unknown field" }],
    });
    await keys.flush();
  });
});

describe("U+0000, lone surrogates and years outside 1970–9999 in any field", () => {
  it("are a 400 naming the field on the in-memory stores", async () => {
    expect(await expectEachFieldNamed(memoryBackend())).toBeGreaterThan(200);
  }, 120_000);

  it("are a 400 naming the field on PGlite", async () => {
    const pglite = new PGlite();
    try {
      const db = fromPglite(pglite);
      await migrate(db, { schema: "latch" });
      expect(await expectEachFieldNamed(postgresBackend(db, "latch"))).toBeGreaterThan(200);
    } finally {
      await pglite.close();
    }
  }, 120_000);

  describe("on a PostgreSQL server", () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
    const schema = `latch_hostile_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
    afterAll(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    });

    it("are a 400 naming the field", async () => {
      await migrate(pool, { schema });
      expect(await expectEachFieldNamed(postgresBackend(pool, schema))).toBeGreaterThan(200);
    }, 120_000);
  });
});
