import { z } from "zod";
import { parseWith } from "../schemas/parse.js";
import { ConsumerNameSchema } from "./inputs.js";

/**
 * What holds a change log back: the transaction every later version waits behind.
 *
 * - `transaction`: a session's open transaction (PostgreSQL `pg_stat_activity`). `state`,
 *   `startedAt` and `ageMs` are missing when the database role may not see other roles'
 *   sessions (grant it `pg_read_all_stats`); `pid` and `xid` are always there.
 * - `prepared_transaction`: a two-phase transaction left prepared (`pg_prepared_xacts`):
 *   `COMMIT PREPARED` or `ROLLBACK PREPARED` its `gid`.
 * - `unknown`: a transaction id that no session shows (it may have just ended).
 *
 * `xid` is the 32-bit transaction id as `pg_stat_activity.backend_xid` and
 * `pg_prepared_xacts.transaction` show it. Times are ISO 8601 UTC; ages in milliseconds by
 * the database's clock.
 */
export type ChangeLogHolder =
  | {
      by: "transaction";
      pid: number;
      xid: string;
      /** e.g. `idle in transaction`, `active`. */
      state?: string;
      applicationName?: string;
      user?: string;
      database?: string;
      /** When the transaction began (`xact_start`). */
      startedAt?: string;
      ageMs?: number;
    }
  | {
      by: "prepared_transaction";
      xid: string;
      gid: string;
      owner: string;
      database: string;
      /** When it was prepared. */
      startedAt: string;
      ageMs: number;
    }
  | { by: "unknown"; xid: string };

/** A consumer's place in a store's change log, and what (if anything) holds the log back. */
export interface ChangeLogStatus {
  /** The consumer asked about, when one was named. */
  consumer?: string;
  /**
   * Its saved cursor; `undefined` when no consumer was named or it has saved none (it starts
   * at the beginning). Counts are taken after this position.
   */
  cursor: string | undefined;
  /** Versions after the cursor that `listSince` hands out now: what an export would publish. */
  ready: number;
  /**
   * Versions after the cursor that are stored (committed) but not handed out yet, because a
   * transaction that began earlier is still running and could still commit a version before
   * them (see `heldBack`). Always 0 on stores whose writes are never held back.
   */
  waiting: number;
  /** `true` when `ready` or `waiting` stopped counting at the query's `countLimit`. */
  capped: boolean;
  /**
   * The oldest transaction still running that holds a transaction id (it wrote, or took one),
   * when there is one: every version committed after it began waits for it to end (`waiting`
   * may still be 0 when none has been committed since). Missing on stores without open
   * transactions (memory, Redis, PGlite).
   */
  heldBack?: ChangeLogHolder;
}

/** What {@link ChangeLogStatus} is asked for. */
export interface ChangeLogStatusQuery {
  /** The consumer (exporter) whose cursor counts start after. Default: the beginning of the log. */
  consumer?: string;
  /** Stop counting `ready` and `waiting` at this many (1 to 10,000,000). Default 1,000,000. */
  countLimit?: number;
}

/** The default {@link ChangeLogStatusQuery.countLimit}: counting is a range scan, so it is bounded. */
export const DEFAULT_CHANGE_LOG_COUNT_LIMIT = 1_000_000;

const ChangeLogStatusQuerySchema = z.strictObject({
  consumer: ConsumerNameSchema.optional(),
  countLimit: z
    .number({ error: "expected an integer from 1 to 10000000" })
    .int({ error: "expected an integer from 1 to 10000000" })
    .min(1, { error: "expected an integer from 1 to 10000000" })
    .max(10_000_000, { error: "expected an integer from 1 to 10000000" })
    .optional(),
});

/**
 * Parses `changeLogStatus`'s query the same way on every backend: bad input is `invalid_input`
 * naming `consumer` or `countLimit`.
 */
export function parseChangeLogStatusQuery(query: unknown): { consumer?: string; countLimit: number } {
  const parsed = parseWith(ChangeLogStatusQuerySchema, query ?? {}, "RatedRecordStore.changeLogStatus");
  return {
    ...(parsed.consumer === undefined ? {} : { consumer: parsed.consumer }),
    countLimit: parsed.countLimit ?? DEFAULT_CHANGE_LOG_COUNT_LIMIT,
  };
}
