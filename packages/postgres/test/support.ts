import { randomBytes } from "node:crypto";
import {
  describeObservationStore,
  describeQuotaReservator,
  describeRatedRecordStore,
  describeUsageCounter,
} from "@latch/testkit";
import {
  PostgresObservationStore,
  PostgresQuota,
  PostgresRatedRecordStore,
  PostgresUsageCounter,
  type Queryable,
} from "../src/index.js";

/** The server every server test runs against; unreachable means the tests fail, never skip. */
export const DATABASE_URL = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/** A fresh schema name for one test run. */
export function freshSchema(label: string): string {
  return `latch_${label}_${process.pid}_${randomBytes(4).toString("hex")}`;
}

/** Counts rows with raw SQL, bypassing the stores. */
export async function count(db: Queryable, sql: string, params: unknown[]): Promise<number> {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM (${sql}) AS t`, params);
  return Number((rows[0] as { n: number | string }).n);
}

/**
 * Registers every store suite of `@latch/testkit` (all but the exporter's) against `db()`,
 * with an independent raw-SQL reader. `db` is read lazily: the caller connects and migrates
 * in its own `beforeAll`.
 */
export function describeConformance(name: string, db: () => Queryable, schema: string): void {
  const options = { schema };
  describeObservationStore({
    name,
    create: () => new PostgresObservationStore(db(), options),
    inspect: {
      countObservations: (id) =>
        count(db(), `SELECT 1 FROM "${schema}".observations WHERE event_id = $1`, [id]),
    },
  });
  describeRatedRecordStore({
    name,
    create: () => new PostgresRatedRecordStore(db(), options),
    inspect: {
      countVersions: (id) => count(db(), `SELECT 1 FROM "${schema}".rated_records WHERE event_id = $1`, [id]),
    },
  });
  describeQuotaReservator({ name, create: () => new PostgresQuota(db(), options) });
  describeUsageCounter({ name, create: () => new PostgresUsageCounter(db(), options) });
}
