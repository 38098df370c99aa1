import type { ChangeLogHolder } from "@latch/core/adapter";
import type { QueryResultLike } from "./queryable.js";

/** A change-log position's (xid, id), as `listSince` compares them. */
export interface LogPosition {
  xid: string;
  id: string;
}

/** What the database says about the log after a position. @internal */
export interface LogStatusRow {
  ready: number;
  waiting: number;
  /** The oldest transaction still running, when there is one. */
  holder: ChangeLogHolder | undefined;
}

interface Row {
  ready: string;
  waiting: string;
  running: boolean;
  xid: string;
  pid: number | null;
  backend_xid: string | null;
  backend_age: number | null;
  state: string | null;
  application_name: string | null;
  usename: string | null;
  datname: string | null;
  started_ms: string | null;
  age_ms: string | null;
  prepared_xid: string | null;
  prepared_age: number | null;
  gid: string | null;
  owner: string | null;
  database: string | null;
  prepared_ms: string | null;
  prepared_age_ms: string | null;
}

/**
 * Counts the versions after `from` that `listSince` hands out now (`xid` below the snapshot's
 * xmin) and those stored but held back (committed by a transaction at or after it), each up
 * to `limit`, and names the oldest transaction that holds an xid anywhere in the cluster (xids
 * are cluster-wide): the session in `pg_stat_activity` whose `backend_xid` is oldest, or a
 * prepared transaction in `pg_prepared_xacts`, whichever is older. That is the snapshot's
 * xmin whenever something is held back; it is looked up directly because a transaction whose
 * xid is newer than every completed one is not yet below the snapshot's xmax, so the snapshot
 * alone would not show it — though every version committed after it began will wait for it.
 * One statement, so the counts and the holder come from one moment. The counts are range
 * scans of `rated_records_log (xid, id)`. `query` runs the statement (the store runs it in a
 * transaction of its own, with its timeouts).
 * @internal
 */
export async function readLogStatus(
  query: (text: string, params: unknown[]) => Promise<QueryResultLike>,
  table: string,
  from: LogPosition,
  limit: number,
): Promise<LogStatusRow> {
  const { rows } = await query(
    `WITH s AS (
       SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin, pg_snapshot_xmax(pg_current_snapshot()) AS xmax
     ), a AS (
       SELECT pid, backend_xid, age(backend_xid) AS xid_age, state, application_name, usename, datname, xact_start
       FROM pg_stat_activity WHERE backend_xid IS NOT NULL
       ORDER BY age(backend_xid) DESC LIMIT 1
     ), p AS (
       SELECT transaction, age(transaction) AS xid_age, gid, owner, database, prepared
       FROM pg_prepared_xacts ORDER BY age(transaction) DESC LIMIT 1
     )
     SELECT
       (SELECT count(*) FROM (SELECT 1 FROM ${table} r
          WHERE r.xid < pg_snapshot_xmin(pg_current_snapshot())
            AND (r.xid, r.id) > ($1::text::xid8, $2::bigint) LIMIT $3) v)::text AS ready,
       (SELECT count(*) FROM (SELECT 1 FROM ${table} r
          WHERE r.xid >= pg_snapshot_xmin(pg_current_snapshot())
            AND (r.xid, r.id) > ($1::text::xid8, $2::bigint) LIMIT $3) w)::text AS waiting,
       s.xmin < s.xmax AS running,
       s.xmin::xid::text AS xid,
       a.pid, a.backend_xid::text AS backend_xid, a.xid_age AS backend_age, a.state, a.application_name,
       a.usename::text AS usename, a.datname::text AS datname,
       floor(extract(epoch FROM a.xact_start) * 1000)::bigint::text AS started_ms,
       greatest(0, floor(extract(epoch FROM clock_timestamp() - a.xact_start) * 1000))::bigint::text AS age_ms,
       p.transaction::text AS prepared_xid, p.xid_age AS prepared_age, p.gid, p.owner::text AS owner,
       p.database::text AS database,
       floor(extract(epoch FROM p.prepared) * 1000)::bigint::text AS prepared_ms,
       greatest(0, floor(extract(epoch FROM clock_timestamp() - p.prepared) * 1000))::bigint::text AS prepared_age_ms
     FROM s LEFT JOIN a ON true LEFT JOIN p ON true`,
    [from.xid, from.id, limit],
  );
  const row = rows[0] as Row;
  return { ready: Number(row.ready), waiting: Number(row.waiting), holder: holderOf(row) };
}

function holderOf(row: Row): ChangeLogHolder | undefined {
  const session = row.pid !== null && row.backend_xid !== null;
  const prepared = row.prepared_xid !== null && row.gid !== null && row.prepared_ms !== null;
  // The older of the two: the larger age.
  if (session && (!prepared || Number(row.backend_age) >= Number(row.prepared_age))) {
    return {
      by: "transaction",
      pid: Number(row.pid),
      xid: row.backend_xid as string,
      // NULL for other roles' sessions without pg_read_all_stats: left out, not guessed.
      ...(row.state === null ? {} : { state: row.state }),
      ...(row.application_name === null ? {} : { applicationName: row.application_name }),
      ...(row.usename === null ? {} : { user: row.usename }),
      ...(row.datname === null ? {} : { database: row.datname }),
      ...(row.started_ms === null ? {} : { startedAt: new Date(Number(row.started_ms)).toISOString() }),
      ...(row.age_ms === null ? {} : { ageMs: Number(row.age_ms) }),
    };
  }
  if (prepared) {
    return {
      by: "prepared_transaction",
      xid: row.prepared_xid as string,
      gid: row.gid as string,
      owner: row.owner ?? "",
      database: row.database ?? "",
      startedAt: new Date(Number(row.prepared_ms)).toISOString(),
      ageMs: Number(row.prepared_age_ms ?? "0"),
    };
  }
  // The snapshot shows a running xid that no session shows (it may have just ended).
  return row.running ? { by: "unknown", xid: row.xid } : undefined;
}
