/**
 * The `latch-ingest --config` module of the gateway e2e test's worker process (the one it
 * SIGKILLs mid-run): the gateway's Postgres stores (schema `LATCH_E2E_SCHEMA`) and price sheets.
 *
 * With `LATCH_E2E_HANG_AFTER=n`, the n-th rated record this process stores and every later one
 * are committed and then never answered (the worker holds their messages unacknowledged, as a
 * process stalled mid-batch), and each such eventId is printed as `hung <eventId>`: the test
 * kills the process while it provably holds committed, unacknowledged messages.
 */
import { InMemoryPricingSource } from "@latch/core";
import type { RatedRecordStore } from "@latch/core/adapter";
import { PRICE_SHEETS } from "@latch/example-quickstart/simulation";
import type { IngestSetup } from "@latch/nats";
import { PostgresObservationStore, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";

export default async function setup(): Promise<IngestSetup> {
  const schema = process.env.LATCH_E2E_SCHEMA as string;
  const url = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";
  const hangAfter = Number(process.env.LATCH_E2E_HANG_AFTER ?? Number.POSITIVE_INFINITY);
  // Named like the gateway's pool, so the test's connection kills hit this process too.
  const pool = new pg.Pool({
    connectionString: `${url}${url.includes("?") ? "&" : "?"}application_name=latch-gateway-e2e`,
    max: 4,
  });
  pool.on("error", () => {}); // a killed idle connection is replaced by the pool
  const real = new PostgresRatedRecordStore(pool, { schema });
  let puts = 0;
  const rated = new Proxy(real, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "put") return typeof value === "function" ? value.bind(target) : value; // methods read private fields
      return async (...args: Parameters<RatedRecordStore["put"]>) => {
        const result = await target.put(...args);
        if (++puts < hangAfter) return result;
        console.log(`hung ${args[0].eventId}`);
        return new Promise(() => {}); // stored, and never acknowledged
      };
    },
  }) as RatedRecordStore;
  return {
    observations: new PostgresObservationStore(pool, { schema }),
    rated,
    pricing: new InMemoryPricingSource(PRICE_SHEETS),
    onWarning: () => {},
    close: () => pool.end(),
  };
}
