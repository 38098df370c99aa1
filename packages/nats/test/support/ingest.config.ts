/** A `latch-ingest --config` module for the bin test: Postgres stores in `LATCH_TEST_SCHEMA`. */
import { PostgresObservationStore, PostgresRatedRecordStore } from "@latch/postgres";
import pg from "pg";
import type { IngestSetup } from "../../src/index.js";
import { DATABASE_URL, pricing } from "./fixtures.js";

export default async function setup(): Promise<IngestSetup> {
  const schema = process.env.LATCH_TEST_SCHEMA as string;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  return {
    observations: new PostgresObservationStore(pool, { schema }),
    rated: new PostgresRatedRecordStore(pool, { schema }),
    pricing: pricing(),
    close: () => pool.end(),
  };
}
