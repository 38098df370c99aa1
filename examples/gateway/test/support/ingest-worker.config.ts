/**
 * The `latch-ingest --config` module of the gateway e2e test's worker process (the one it
 * SIGKILLs mid-run): the gateway's Postgres stores (schema `LATCH_E2E_SCHEMA`) and price sheets.
 */
import { InMemoryPricingSource } from "@latch/core";
import { PRICE_SHEETS } from "@latch/example-quickstart/simulation";
import type { IngestSetup } from "@latch/nats";
import { PostgresObservationStore, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";

export default async function setup(): Promise<IngestSetup> {
  const schema = process.env.LATCH_E2E_SCHEMA as string;
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  // Named like the gateway's pool, so the test's connection kills hit this process too.
  const pool = new pg.Pool({
    connectionString: `${url}${url.includes("?") ? "&" : "?"}application_name=latch-gateway-e2e`,
    max: 4,
  });
  pool.on("error", () => {}); // a killed idle connection is replaced by the pool
  return {
    observations: new PostgresObservationStore(pool, { schema }),
    rated: new PostgresRatedRecordStore(pool, { schema }),
    pricing: new InMemoryPricingSource(PRICE_SHEETS),
    onWarning: () => {},
    close: () => pool.end(),
  };
}
