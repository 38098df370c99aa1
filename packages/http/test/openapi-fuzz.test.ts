import {
  ApiKeys,
  MemoryApiKeyStore,
  MemoryCreditLedger,
  MemoryQuotaReservator,
  MemoryRatedRecordStore,
  type RatedUsageRecord,
} from "@latch/core";
import type { ApiKeyStore, CreditLedger, RatedRecordStore } from "@latch/core/adapter";
import { createBillingApp } from "@latch/http";
import {
  migrate,
  PostgresApiKeyStore,
  PostgresCreditLedger,
  PostgresQuota,
  PostgresRatedRecordStore,
} from "@latch/postgres";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type FuzzFailure, type FuzzWorld, OpenApiFuzzer, prng } from "./openapi-fuzz.js";
import { pooled } from "./support.js";

// Requests generated from the served /openapi.json (see openapi-fuzz.ts) against the billing
// app with credits, on the in-memory stores and on a PostgreSQL server: no 5xx, and every
// answer as documented. LATCH_FUZZ_SEED replays a run; LATCH_FUZZ_PER_OPERATION sets its size.
const SEED = Number(process.env.LATCH_FUZZ_SEED ?? 18_2026);
const PER_OPERATION = Number(process.env.LATCH_FUZZ_PER_OPERATION ?? 300);
const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SECRET = "openapi-fuzz-secret-openapi-fuzz-secret-01234";
const SCOPES = ["keys:read", "keys:write", "usage:read", "billing:read", "credits:read", "credits:write"];

interface Backend {
  keys: ApiKeyStore;
  records: RatedRecordStore;
  credits: CreditLedger;
  quota: NonNullable<ConstructorParameters<typeof ApiKeys>[0]["quota"]>;
}

/** Seeds a tenant (a key with every scope, a quota'd key, rated lines, a ledger with a grant) and fuzzes. */
async function fuzz(
  backend: Backend,
): Promise<{ sent: number; failures: FuzzFailure[]; statuses: Record<string, number> }> {
  const keys = new ApiKeys({ store: backend.keys, secret: SECRET, quota: backend.quota });
  const tenantId = uniqueId("fuzz-tenant");
  const admin = await keys.create({ owner: { tenantId }, name: "admin", scopes: SCOPES });
  const metered = await keys.create({
    owner: { tenantId },
    name: "metered",
    scopes: ["usage:read"],
    quota: { unit: "tokens", limit: 1_000 },
  });
  const lines: RatedUsageRecord[] = [];
  for (let i = 0; i < 30; i++) {
    lines.push(
      makeRatedRecord({
        observation: {
          subject: { tenantId, apiKeyId: metered.key.id, feature: i % 2 === 0 ? "chat" : "=cmd" },
          timing: {
            startedAt: `2026-03-0${1 + (i % 3)}T00:00:${String(i).padStart(2, "0")}Z`,
            completedAt: `2026-03-0${1 + (i % 3)}T00:00:${String(i).padStart(2, "0")}.5Z`,
          },
        },
      }),
    );
  }
  await backend.records.putMany(lines);
  const featureId = uniqueId("tokens");
  await backend.credits.createFeature({ featureId, measure: { kind: "quantity", meters: ["input_tokens"] } });
  const ledgerId = uniqueId("fuzz-ledger");
  await backend.credits.createLedger({ ledgerId, subject: { tenantId } });
  const grantId = uniqueId("fuzz-grant");
  await backend.credits.grant({
    grantId,
    ledgerId,
    featureId,
    amount: "1000",
    effectiveAt: "2026-01-01T00:00:00Z",
  });

  const app = createBillingApp({
    keys,
    records: backend.records,
    credits: backend.credits,
    exportPageSize: 7,
  });
  const document = (await (await app.request("/openapi.json")).json()) as Record<string, unknown>;
  const fuzzer = new OpenApiFuzzer(document);
  const rng = prng(SEED);
  let fresh = 0;
  const world: FuzzWorld = {
    key: admin.plaintext,
    known: {
      id: () => (rng() < 0.5 ? metered.key.id : `key_${uniqueId("missing").replace(/[^A-Za-z0-9_-]/g, "")}`),
      key_id: () => metered.key.id,
      ledgerId: () => (rng() < 0.8 ? ledgerId : uniqueId("no-ledger")),
      grantId: () => grantId,
      ledger_id: () => `${ledgerId}-${fresh++}`,
      grant_id: () => `${grantId}-${fresh++}`,
      feature_id: () => featureId,
      tenant_id: () => tenantId,
      amount: () => pick(["1", "0.5", "1000000", `0.${"0".repeat(29)}1`]),
      max_amount: () => "10",
      currency: () => "USD",
      limit: () => "25.00",
      time_zone: () => pick(["UTC", "Europe/Paris", "America/New_York"]),
      scopes: () => pick(SCOPES),
      from: () => "2026-03-01T00:00:00Z",
      to: () => "2026-03-04T00:00:00Z",
      at: () => `2026-0${2 + Math.floor(rng() * 4)}-15T00:00:00Z`,
      effective_at: () => `2026-0${2 + Math.floor(rng() * 4)}-01T00:00:00Z`,
      expires_at: () => "2027-01-01T00:00:00Z",
      cursor: () => "",
      name: () => "fuzz key",
    },
  };
  // A cursor is opaque: the generator leaves it out (it is fuzzed by the mutations).
  delete world.known.cursor;
  function pick<T>(items: readonly T[]): T {
    return items[Math.floor(rng() * items.length)] as T;
  }

  const failures: FuzzFailure[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0;
  for (const [method, path, op] of fuzzer.operations()) {
    const requests = fuzzer.requests(
      method,
      path,
      op,
      world,
      rng,
      path === "/openapi.json" ? 5 : PER_OPERATION,
    );
    await pooled(requests.length, 4, async (i) => {
      const request = requests[i] as (typeof requests)[number];
      const failure = await fuzzer.check(app, method, path, request);
      sent += 1;
      if (failure !== undefined) failures.push(failure);
      else statuses[request.operation] = (statuses[request.operation] ?? 0) + 1;
    });
  }
  await keys.flush();
  return { sent, failures, statuses };
}

function report(result: { sent: number; failures: FuzzFailure[] }): void {
  // A readable failure: the first few, each with what was broken (the seed replays them all).
  expect(
    result.failures.slice(0, 8).map((f) => `${f.status} ${f.reason}\n  ${f.request}`),
    `${result.failures.length} of ${result.sent} requests failed (LATCH_FUZZ_SEED=${SEED})`,
  ).toEqual([]);
}

describe("requests generated from /openapi.json", () => {
  it("get no 5xx and only documented answers on the in-memory stores", async () => {
    const result = await fuzz({
      keys: new MemoryApiKeyStore(),
      records: new MemoryRatedRecordStore(),
      credits: new MemoryCreditLedger(),
      quota: new MemoryQuotaReservator(),
    });
    report(result);
    expect(result.sent).toBeGreaterThan(16 * PER_OPERATION);
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
      const result = await fuzz({
        keys: new PostgresApiKeyStore(pool, { schema }),
        records: new PostgresRatedRecordStore(pool, { schema }),
        credits: new PostgresCreditLedger(pool, { schema }),
        quota: new PostgresQuota(pool, { schema }),
      });
      report(result);
      expect(result.sent).toBeGreaterThan(16 * PER_OPERATION);
    }, 120_000);
  });
});
