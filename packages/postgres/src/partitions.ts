import type { Queryable } from "./queryable.js";
import { DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { resolveTimeouts, type TransactionOptions, transact } from "./transaction.js";

/**
 * The statement that creates the monthly partitions from this month (UTC, by the database
 * clock) to `ahead` months later, and moves rows waiting in a DEFAULT partition into theirs.
 * @internal
 */
export function MAINTAIN_PARTITIONS_SQL(q: string, ahead: number): string {
  if (!Number.isSafeInteger(ahead) || ahead < 0 || ahead > 120) {
    throw new TypeError("monthsAhead must be a whole number from 0 to 120");
  }
  return `SELECT ${q}.maintain_partitions(
    to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'),
    to_char((now() AT TIME ZONE 'UTC') + interval '${ahead} months', 'YYYY-MM')) AS created`;
}

export interface MaintainPartitionsOptions extends TransactionOptions {
  /** The schema `migrate()` created. Default `latch`. */
  schema?: string;
  /** Months after the current one to create partitions for (0 to 120). Default 3. */
  monthsAhead?: number;
}

/**
 * Creates the monthly partitions of observations and rated records (migration 0017) for this
 * month and `monthsAhead` more, and moves rows that a write of a month without a partition
 * stored in the DEFAULT partition into their month's new partition (positions in the change
 * log unchanged). Safe to run from any number of processes at once (an advisory lock
 * serialises it; a month created meanwhile is skipped), and a no-op when every partition
 * exists. `migrate()` runs it too; run it (or `latch migrate`) at least once a quarter, e.g.
 * from the same cron as `latch export`. Writes never depend on it: a row without its month's
 * partition lands in DEFAULT, fully readable. Returns the months it created (`YYYY-MM`).
 *
 * @example
 * await maintainPartitions(pool, { schema: "latch", monthsAhead: 3 }); // ["2026-07"]
 */
export async function maintainPartitions(
  db: Queryable,
  options: MaintainPartitionsOptions = {},
): Promise<string[]> {
  const q = quoteSchema(options.schema ?? DEFAULT_SCHEMA);
  const sql = MAINTAIN_PARTITIONS_SQL(q, options.monthsAhead ?? 3);
  const settings = resolveTimeouts(options, { lockTimeoutMs: 10_000, statementTimeoutMs: 0 });
  return transact(db, settings, async (tx) => {
    const { rows } = await tx.query(sql);
    return (rows[0] as { created: string[] }).created;
  });
}
