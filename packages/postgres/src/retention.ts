import { LatchValidationError } from "@latch/core";
import type { Queryable } from "./queryable.js";
import { assertMigrated, DEFAULT_SCHEMA, quoteSchema } from "./schema.js";
import { resolveTimeouts, type TransactionOptions, transact } from "./transaction.js";

const MONTH = /^[0-9]{4}-(0[1-9]|1[0-2])$/;
/** A change-log position is `xid × 10^19 + id` (see `PostgresRatedRecordStore.listSince`). */
const SEQ = "(r.xid::text::numeric * 10000000000000000000 + r.id)";
const KEY_BATCH = 10_000;

/** The export a month must be covered by before it may go. */
export interface RetentionExport {
  /** The export consumer (`latch export --consumer`): its cursor must have passed the month's last entry. */
  consumer: string;
  /** The change-log ranges of every manifest found in the export target (`cursor.firstSeq`/`lastSeq`). */
  manifests: ReadonlyArray<{ firstSeq: string; lastSeq: string }>;
}

export interface ApplyRetentionOptions extends TransactionOptions, RetentionExport {
  /** The schema `migrate()` created. Default `latch`. */
  schema?: string;
  /** Months before this one (`YYYY-MM`, UTC) go. */
  before: string;
  /** Only report what would happen. Default `true`: pass `false` to act. */
  dryRun?: boolean;
  /** Detach the months' partitions but keep them as tables (`<table>_pYYYY_MM`) instead of dropping them. */
  keepDetached?: boolean;
}

/** One month before the horizon, and why it may or may not go. */
export interface RetentionMonth {
  month: string;
  observations: number;
  ratedRecords: number;
  /** The month's last change-log position (absent when it holds no rated record). */
  lastSeq?: string;
  /** Empty when the month may go; else each reason it may not. */
  refusals: string[];
}

export interface RetentionResult {
  before: string;
  /** The horizon before the call (`undefined`: none yet). */
  previousHorizon: string | undefined;
  consumer: string;
  cursor: string | undefined;
  manifests: number;
  months: RetentionMonth[];
  /** Whether the months were removed (false on a dry run, or when any month was refused). */
  applied: boolean;
  action: "dropped" | "detached";
  /** Key-table rows of months before the horizon deleted by this call. */
  keysDeleted: number;
}

const suffix = (month: string) => `p${month.replace("-", "_")}`;

async function one<T>(db: Queryable, sql: string, params: unknown[] = []): Promise<T> {
  const { rows } = await db.query(sql, params);
  return rows[0] as T;
}

/**
 * Removes whole months of observations and rated records (migration 0017's monthly partitions)
 * once they are exported: for every month before `before`, each rated record must lie inside
 * the change-log range of one of `manifests` and at or before the `consumer`'s saved cursor,
 * no observation may be unpriced, and no event may have versions on both sides of `before`.
 * Then, in one transaction under an ACCESS EXCLUSIVE lock of both tables (brief: the checks
 * ran before it; under it only "nothing after the cursor" is checked again): the retention
 * horizon moves to `before` (writes of earlier months are refused from then on, with
 * `invalid_input` naming `timing.completedAt`), and the months' partitions are detached and
 * dropped (or kept detached). The months' key-table rows are then deleted in batches; a
 * crash anywhere leaves a state that a rerun completes. A dry run (the default) only reports.
 *
 * @example
 * const result = await applyRetention(pool, {
 *   before: "2026-01", consumer: "billing", manifests: ranges, dryRun: false,
 * });
 * result.months; // [{ month: "2025-11", observations: 1200, ratedRecords: 1210, refusals: [] }, …]
 */
export async function applyRetention(
  db: Queryable,
  options: ApplyRetentionOptions,
): Promise<RetentionResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const q = quoteSchema(schema);
  if (typeof options.before !== "string" || !MONTH.test(options.before)) {
    throw LatchValidationError.at("applyRetention", "before", "expected a month YYYY-MM");
  }
  if (typeof options.consumer !== "string" || options.consumer.length === 0) {
    throw LatchValidationError.at("applyRetention", "consumer", "expected the export consumer's name");
  }
  const firsts: string[] = [];
  const lasts: string[] = [];
  options.manifests.forEach((m, i) => {
    if (!/^[0-9]{1,40}$/.test(m.firstSeq) || !/^[0-9]{1,40}$/.test(m.lastSeq)) {
      throw LatchValidationError.at(
        "applyRetention",
        `manifests.${i}`,
        "expected decimal firstSeq and lastSeq",
      );
    }
    firsts.push(m.firstSeq);
    lasts.push(m.lastSeq);
  });
  const { before, consumer } = options;
  const dryRun = options.dryRun ?? true;
  const action = options.keepDetached === true ? "detached" : "dropped";
  const settings = resolveTimeouts(options, { lockTimeoutMs: 10_000, statementTimeoutMs: 0 });
  await assertMigrated(db, schema);

  if (!dryRun) {
    // Rows of old months still in a DEFAULT partition move to their own partitions first.
    await transact(db, settings, (tx) =>
      tx.query(`SELECT ${q}.maintain_partitions($1, $1)`, [before]).then(() => undefined),
    );
  }
  const plan = await transact(db, settings, async (tx) => {
    const horizon = await one<{ h: string | null }>(
      tx,
      `SELECT max(before_month) AS h FROM ${q}.retention_horizon`,
    );
    const cursor = await one<{ c: string | null }>(
      tx,
      `SELECT position::text AS c FROM ${q}.consumer_cursors WHERE name = $1`,
      [consumer],
    );
    const { rows: parts } = await tx.query(
      `SELECT DISTINCT replace(substr(c.relname, length('rated_records_p') + 1), '_', '-') AS month
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = $1::regclass AND c.relname ~ '^rated_records_p[0-9]{4}_[0-9]{2}$'
       ORDER BY 1`,
      [`${q}.rated_records`],
    );
    const months: RetentionMonth[] = [];
    for (const { month } of parts as Array<{ month: string }>) {
      if (month >= before) continue;
      const s = suffix(month);
      const rated = await one<{ n: string; last: string | null; uncovered: string; after: string }>(
        tx,
        `SELECT count(*)::text AS n, max(${SEQ})::text AS last,
           count(*) FILTER (WHERE NOT m.ranges @> ${SEQ})::text AS uncovered,
           count(*) FILTER (WHERE $3::numeric IS NULL OR ${SEQ} > $3::numeric)::text AS after
         FROM ${q}."rated_records_${s}" r,
           (SELECT coalesce(range_agg(numrange(f, l, '[]')), '{}'::nummultirange) AS ranges
            FROM unnest($1::numeric[], $2::numeric[]) AS u(f, l)) m`,
        [firsts, lasts, cursor?.c ?? null],
      );
      const obs = await one<{ n: string; unpriced: string }>(
        tx,
        `SELECT count(*)::text AS n, count(*) FILTER (WHERE NOT priced)::text AS unpriced
         FROM ${q}."observations_${s}"`,
      );
      const split = await splitEvents(tx, q, month, before);
      const refusals: string[] = [];
      if (Number(rated.after) > 0) {
        refusals.push(
          `${rated.after} rated record(s) after consumer ${consumer}'s cursor (${cursor?.c ?? "none"}): export them first`,
        );
      }
      if (Number(rated.uncovered) > 0) {
        refusals.push(`${rated.uncovered} rated record(s) in no export manifest found`);
      }
      if (Number(obs.unpriced) > 0) refusals.push(`${obs.unpriced} unpriced observation(s)`);
      if (Number(split.n) > 0) {
        refusals.push(`${split.n} event(s) with versions in ${before} or later (the whole event must go)`);
      }
      months.push({
        month,
        observations: Number(obs.n),
        ratedRecords: Number(rated.n),
        ...(rated.last === null ? {} : { lastSeq: rated.last }),
        refusals,
      });
    }
    const waiting = await one<{ n: string }>(
      tx,
      `SELECT (SELECT count(*) FROM ${q}.observations_default
                WHERE left(payload #>> '{timing,completedAt}', 7) < $1)
            + (SELECT count(*) FROM ${q}.rated_records_default WHERE ${q}.month_of_ms(completed_ms) < $1) AS n`,
      [before],
    );
    return {
      horizon: horizon?.h ?? undefined,
      cursor: cursor?.c ?? undefined,
      months,
      waiting: Number(waiting.n),
    };
  });

  const result: RetentionResult = {
    before,
    previousHorizon: plan.horizon,
    consumer,
    cursor: plan.cursor,
    manifests: options.manifests.length,
    months: plan.months,
    applied: false,
    action,
    keysDeleted: 0,
  };
  if (plan.waiting > 0) {
    // Only on a dry run: apply moved them into partitions above.
    result.months.push({
      month: "DEFAULT",
      observations: plan.waiting,
      ratedRecords: 0,
      refusals: [`${plan.waiting} row(s) of earlier months in a DEFAULT partition (apply moves them first)`],
    });
  }
  if (dryRun || result.months.some((m) => m.refusals.length > 0)) return result;

  const cursor = plan.cursor;
  await transact(db, settings, async (tx) => {
    await tx.query(`LOCK TABLE ${q}.observations, ${q}.rated_records IN ACCESS EXCLUSIVE MODE`);
    await tx.query(
      `INSERT INTO ${q}.retention_horizon (before_month) VALUES ($1)
       ON CONFLICT (singleton) DO UPDATE SET before_month = greatest(retention_horizon.before_month, EXCLUDED.before_month),
         updated_at = now()`,
      [before],
    );
    // A write of an old month may have landed in DEFAULT since maintenance moved the rest.
    const stray = await one<{ n: string }>(
      tx,
      `SELECT ((SELECT count(*) FROM ${q}.observations_default
                 WHERE left(payload #>> '{timing,completedAt}', 7) < $1)
             + (SELECT count(*) FROM ${q}.rated_records_default WHERE ${q}.month_of_ms(completed_ms) < $1))::text AS n`,
      [before],
    );
    if (Number(stray.n) > 0) {
      throw LatchValidationError.at(
        "applyRetention",
        "before",
        `${stray.n} row(s) of months before ${before} arrived while retention ran; nothing was removed, run it again after the next export`,
      );
    }
    for (const m of result.months) {
      const s = suffix(m.month);
      // Under the lock, nothing may have arrived after the cursor the checks used (anything
      // committed since has a later position than any cursor handed out before).
      const late = await one<{ n: string }>(
        tx,
        `SELECT count(*)::text AS n FROM ${q}."rated_records_${s}" r
         WHERE $1::numeric IS NULL OR ${SEQ} > $1::numeric`,
        [cursor ?? null],
      );
      const unpriced = await one<{ n: string }>(
        tx,
        `SELECT count(*)::text AS n FROM ${q}."observations_${s}" WHERE NOT priced`,
      );
      // A version of one of the month's events in a later month (a correction stored since the
      // checks) would lose the version it supersedes: its export could not resolve it.
      const split = await splitEvents(tx, q, m.month, before);
      if (Number(late.n) > 0 || Number(unpriced.n) > 0 || Number(split.n) > 0) {
        throw LatchValidationError.at(
          "applyRetention",
          "before",
          `month ${m.month} took new rows (or a version of one of its events in ${before} or later) while retention ran; nothing was removed, run it again after the next export`,
        );
      }
      for (const table of ["observations", "rated_records"]) {
        await tx.query(`ALTER TABLE ${q}.${table} DETACH PARTITION ${q}."${table}_${s}"`);
        if (action === "dropped") await tx.query(`DROP TABLE ${q}."${table}_${s}"`);
      }
      await tx.query(
        `INSERT INTO ${q}.retained_months (month, action, observations, rated_records, last_seq, consumer, manifests)
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7) ON CONFLICT (month) DO NOTHING`,
        [
          m.month,
          action,
          m.observations,
          m.ratedRecords,
          m.lastSeq ?? null,
          consumer,
          options.manifests.length,
        ],
      );
    }
  });
  result.applied = true;
  result.keysDeleted = await deleteKeysBefore(db, q, settings);
  return result;
}

/** The events of `month` with a version or an observation in `before` or later. */
function splitEvents(tx: Queryable, q: string, month: string, before: string): Promise<{ n: string }> {
  return one<{ n: string }>(
    tx,
    `SELECT count(DISTINCT k.event_id)::text AS n FROM ${q}.rated_record_keys k
     WHERE k.month = $1 AND (
       EXISTS (SELECT 1 FROM ${q}.rated_record_keys o WHERE o.event_id = k.event_id AND o.month >= $2)
       OR EXISTS (SELECT 1 FROM ${q}.observation_keys o WHERE o.event_id = k.event_id AND o.month >= $2))`,
    [month, before],
  );
}

/** Deletes the key-table rows of months before the horizon, a batch per transaction. */
async function deleteKeysBefore(
  db: Queryable,
  q: string,
  settings: ReturnType<typeof resolveTimeouts>,
): Promise<number> {
  let deleted = 0;
  for (const table of ["observation_keys", "rated_record_keys"]) {
    const key = table === "observation_keys" ? "event_id" : "rated_record_id";
    for (;;) {
      const n = await transact(db, settings, async (tx) => {
        const { rows } = await tx.query(
          `WITH gone AS (
             DELETE FROM ${q}.${table} WHERE ${key} IN (
               SELECT ${key} FROM ${q}.${table}
               WHERE month < (SELECT before_month FROM ${q}.retention_horizon) LIMIT ${KEY_BATCH})
             RETURNING 1)
           SELECT count(*)::int AS n FROM gone`,
        );
        return Number((rows[0] as { n: number }).n);
      });
      deleted += n;
      if (n < KEY_BATCH) break;
    }
  }
  return deleted;
}
