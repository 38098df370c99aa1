import { migrate } from "@latch/postgres";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type Backend, memoryBackend, postgresBackend, seedWorld } from "./fuzz-world.js";
import type { FuzzFailure } from "./openapi-fuzz.js";
import { pooled } from "./support.js";

// Requests generated from the served /openapi.json (see openapi-fuzz.ts) against the billing
// app with credits, on the in-memory stores and on a PostgreSQL server: no 5xx, and every
// answer as documented. LATCH_FUZZ_SEED replays a run; LATCH_FUZZ_PER_OPERATION sets its size.
const SEED = Number(process.env.LATCH_FUZZ_SEED ?? 18_2026);
const PER_OPERATION = Number(process.env.LATCH_FUZZ_PER_OPERATION ?? 300);
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** Fuzzes every operation of the served document: what failed, and the statuses each operation answered. */
async function fuzz(backend: Backend) {
  const { app, keys, fuzzer, rng, world } = await seedWorld(backend, SEED);
  const failures: FuzzFailure[] = [];
  const statuses: Record<string, Set<number>> = {};
  let sent = 0;
  for (const [method, path, op] of fuzzer.operations()) {
    const count = path === "/openapi.json" ? 5 : PER_OPERATION;
    const requests = fuzzer.requests(method, path, op, world(false), rng, count);
    await pooled(requests.length, 4, async (i) => {
      const request = requests[i] as (typeof requests)[number];
      const { status, failure } = await fuzzer.check(app, method, path, request);
      sent += 1;
      if (failure !== undefined) failures.push(failure);
      statuses[request.operation] ??= new Set();
      statuses[request.operation]?.add(status);
    });
  }
  await keys.flush();
  return { sent, failures, statuses };
}

function expectDocumentedAnswers(result: Awaited<ReturnType<typeof fuzz>>): void {
  // A readable failure: the first few, each with what was broken (the seed replays them all).
  expect(
    result.failures.slice(0, 8).map((f) => `${f.status} ${f.reason}\n  ${f.request}`),
    `${result.failures.length} of ${result.sent} requests failed (LATCH_FUZZ_SEED=${SEED})`,
  ).toEqual([]);
  expect(result.sent).toBeGreaterThan(16 * PER_OPERATION);
  // The generator reaches every handler (a 2xx) and every validator (a 400), not only one of them.
  const operations = Object.keys(result.statuses).filter((op) => op !== "GET /openapi.json");
  expect(operations).toHaveLength(17);
  for (const op of operations) {
    const seen = [...(result.statuses[op] ?? [])];
    expect(
      seen.some((s) => s >= 200 && s < 300),
      `${op} answered ${seen.join(", ")}`,
    ).toBe(true);
    expect(seen, op).toContain(400);
  }
}

describe("requests generated from /openapi.json", () => {
  it("get no 5xx and only documented answers on the in-memory stores", async () => {
    expectDocumentedAnswers(await fuzz(memoryBackend()));
  }, 120_000);

  describe("on a PostgreSQL server", () => {
    const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
    const schema = `latch_fuzz_${process.pid}_${Math.floor(Math.random() * 1e9)}`;
    afterAll(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    });

    it("get no 5xx and only documented answers", async () => {
      await migrate(pool, { schema });
      expectDocumentedAnswers(await fuzz(postgresBackend(pool, schema)));
    }, 120_000);
  });
});
