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
  PostgresApiKeyStore,
  PostgresCreditLedger,
  PostgresQuota,
  PostgresRatedRecordStore,
  type Queryable,
} from "@latch/postgres";
import { makeRatedRecord, uniqueId } from "@latch/testkit";
import { type FuzzWorld, OpenApiFuzzer, prng } from "./openapi-fuzz.js";

const SECRET = "openapi-fuzz-secret-openapi-fuzz-secret-01234";
export const ALL_SCOPES = [
  "keys:read",
  "keys:write",
  "usage:read",
  "billing:read",
  "credits:read",
  "credits:write",
];

/** The stores one run of the app uses. */
export interface Backend {
  keys: ApiKeyStore;
  records: RatedRecordStore;
  credits: CreditLedger;
  quota: NonNullable<ConstructorParameters<typeof ApiKeys>[0]["quota"]>;
}

/**
 * Seeds a tenant on `backend` (a key with every scope, a quota'd key, rated lines, a credit
 * ledger with a grant) and serves the billing app with credits over it. `world(exact)` gives
 * the generator's known values: `exact` always names the seeded ledger and key; otherwise
 * they sometimes name missing ones (a 404 is an answer too).
 */
export async function seedWorld(backend: Backend, seed: number) {
  const keys = new ApiKeys({ store: backend.keys, secret: SECRET, quota: backend.quota });
  const tenantId = uniqueId("fuzz-tenant");
  const admin = await keys.create({ owner: { tenantId }, name: "admin", scopes: ALL_SCOPES });
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
  const rng = prng(seed);
  let fresh = 0;
  const world = (exact: boolean): FuzzWorld => ({
    key: admin.plaintext,
    known: {
      id: () =>
        exact || rng() < 0.5 ? metered.key.id : `key_${uniqueId("missing").replace(/[^A-Za-z0-9_-]/g, "")}`,
      key_id: () => metered.key.id,
      ledgerId: () => (exact || rng() < 0.8 ? ledgerId : uniqueId("no-ledger")),
      grantId: () => grantId,
      ledger_id: () => `${ledgerId}-${fresh++}`,
      grant_id: () => `${grantId}-${fresh++}`,
      feature_id: () => featureId,
      tenant_id: () => tenantId,
      amount: () => pick(["1", "0.5", "1000000", `0.${"0".repeat(29)}1`]),
      max_amount: () => "10",
      currency: () => "USD",
      limit: () => "25.00", // a money quota's (an integer field is never looked up here)
      time_zone: () => pick(["UTC", "Europe/Paris", "America/New_York"]),
      scopes: () => pick(ALL_SCOPES),
      from: () => "2026-03-01T00:00:00Z",
      to: () => "2026-03-04T00:00:00Z",
      at: () => `2026-0${2 + Math.floor(rng() * 4)}-15T00:00:00Z`,
      effective_at: () => `2026-0${2 + Math.floor(rng() * 4)}-01T00:00:00Z`,
      expires_at: () => "2027-01-01T00:00:00Z",
      cursor: () => "",
      name: () => "fuzz key",
    },
  });
  function pick<T>(items: readonly T[]): T {
    return items[Math.floor(rng() * items.length)] as T;
  }
  return { app, keys, fuzzer, rng, world };
}

/** The in-memory stores. */
export function memoryBackend(): Backend {
  return {
    keys: new MemoryApiKeyStore(),
    records: new MemoryRatedRecordStore(),
    credits: new MemoryCreditLedger(),
    quota: new MemoryQuotaReservator(),
  };
}

/** The PostgreSQL stores on `db` (a server pool or PGlite), in `schema` (migrated by the caller). */
export function postgresBackend(db: Queryable, schema: string): Backend {
  return {
    keys: new PostgresApiKeyStore(db, { schema }),
    records: new PostgresRatedRecordStore(db, { schema }),
    credits: new PostgresCreditLedger(db, { schema }),
    quota: new PostgresQuota(db, { schema }),
  };
}
