import type { IngestRecorderConfig } from "@latch/core/adapter";

/**
 * The default export of a `latch-ingest --config` module (or what a function exported there
 * returns, possibly async): the stores and pricing the worker writes with — the same ones your
 * gateways give `createLatch` — and how to close them.
 *
 * @example
 * // ingest.config.js
 * export default async () => {
 *   const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 *   return { observations: new PostgresObservationStore(pool), rated: new PostgresRatedRecordStore(pool),
 *     pricing: new InMemoryPricingSource(snapshots), close: () => pool.end() };
 * };
 */
export interface IngestSetup extends IngestRecorderConfig {
  /** Called once the worker stopped (close your pools). */
  close?: () => Promise<void>;
}
