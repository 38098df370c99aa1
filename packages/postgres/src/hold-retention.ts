import { parseWith } from "@latch/core/adapter";
import { z } from "zod";
import { isPool, type Queryable } from "./queryable.js";

/** The Postgres stores' default retention of resolved holds: one day. */
export const DEFAULT_POSTGRES_HOLD_RETENTION_MS = 24 * 60 * 60 * 1_000;

/** Options of `purgeResolvedHolds` (`PostgresQuota`, `PostgresCreditLedger`). */
export interface PurgeResolvedHoldsOptions {
  /** Most holds deleted per batch (one statement, one short transaction). Default 1,000. */
  limit?: number;
}

const PurgeOptionsSchema = z.strictObject({
  limit: z
    .number({ error: "expected an integer from 1 to 100000" })
    .int({ error: "expected an integer from 1 to 100000" })
    .min(1, { error: "expected an integer from 1 to 100000" })
    .max(100_000, { error: "expected an integer from 1 to 100000" })
    .optional(),
});

/** Reserves between two background purges. */
const PURGE_EVERY = 200;
/** Most holds one background purge deletes: 2.5 times what the reserves in between can resolve. */
const PURGE_BATCH = 500;

/**
 * The purge of resolved holds of one store: on demand, batch after batch, and in the
 * background every 200 reserves (one batch of at most 500, so deletions outpace what those
 * reserves can resolve and the table stays bounded). `batch(limit)` runs one statement of the
 * store's purge function and returns how many holds it deleted.
 * @internal
 */
export class ResolvedHoldPurge {
  readonly #db: Queryable;
  readonly #batch: (limit: number) => Promise<number>;
  #reserves = 0;
  /** The background batch still running, if any. */
  #running: Promise<void> | undefined;

  constructor(db: Queryable, batch: (limit: number) => Promise<number>) {
    this.#db = db;
    this.#batch = batch;
  }

  /**
   * Batches until one comes back short (or `signal` aborts between them), after the background
   * batch still running, if any: when this resolves, no purge of this store is in flight.
   */
  async purge(options: unknown, subject: string, signal?: AbortSignal): Promise<{ purged: number }> {
    signal?.throwIfAborted();
    const { limit = 1_000 } = parseWith(PurgeOptionsSchema, options ?? {}, subject);
    await this.#running;
    let purged = 0;
    for (;;) {
      const batch = await this.#batch(limit);
      purged += batch;
      if (batch < limit || signal?.aborted) return { purged };
    }
  }

  /**
   * Counts a reserve; every 200th starts one batch without waiting for it (the reserve's answer
   * never waits on housekeeping) and ignores its failure (the next one retries). Only on a pool
   * or PGlite: a single session may be inside the caller's transaction, which a failing purge
   * would abort, so there `purgeResolvedHolds()` is the caller's to schedule.
   */
  afterReserve(): void {
    if (++this.#reserves < PURGE_EVERY || this.#running !== undefined) return;
    if (!isPool(this.#db) && this.#db.transaction === undefined) return;
    this.#reserves = 0;
    this.#running = this.#batch(PURGE_BATCH).then(
      () => {
        this.#running = undefined;
      },
      () => {
        this.#running = undefined;
      },
    );
  }
}
