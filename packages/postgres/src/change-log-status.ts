import type { ChangeLogHolder } from "@latch/core";
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
  state: string | null;
  application_name: string | null;
  usename: string | null;
  datname: string | null;
  started_ms: string | null;
  age_ms: string | null;
  gid: string | null;
  owner: string | null;
  database: string | null;
  prepared_ms: string | null;
  prepared_age_ms: string | null;
}

/**
 * Counts the versions after `from` that `listSince` hands out now (`xid` below the snapshot's
 * xmin) and those stored but held back (committed by a transaction at or after it), each up
 * to `limit`, and names the transaction the snapshot's xmin belongs to: the oldest one still
 * running in the whole cluster (xids are cluster-wide), found in `pg_stat_activity` by
 * `backend_xid` or in `pg_prepared_xacts`. One statement, so the counts and the holder come
 * from one snapshot. The counts are range scans of `rated_records_log (xid, id)`. `query` runs
 * the statement (the store runs it in a transaction of its own, with its timeouts).
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
       a.pid, a.state, a.application_name, a.usename::text AS usename, a.datname::text AS datname,
       floor(extract(epoch FROM a.xact_start) * 1000)::bigint::text AS started_ms,
       greatest(0, floor(extract(epoch FROM clock_timestamp() - a.xact_start) * 1000))::bigint::text AS age_ms,
       p.gid, p.owner::text AS owner, p.database::text AS database,
       floor(extract(epoch FROM p.prepared) * 1000)::bigint::text AS prepared_ms,
       greatest(0, floor(extract(epoch FROM clock_timestamp() - p.prepared) * 1000))::bigint::text AS prepared_age_ms
     FROM s
     LEFT JOIN LATERAL (
       SELECT * FROM pg_stat_activity WHERE backend_xid = s.xmin::xid LIMIT 1
     ) a ON s.xmin < s.xmax
     LEFT JOIN LATERAL (
       SELECT * FROM pg_prepared_xacts WHERE transaction = s.xmin::xid LIMIT 1
     ) p ON s.xmin < s.xmax`,
    [from.xid, from.id, limit],
  );
  const row = rows[0] as Row;
  return { ready: Number(row.ready), waiting: Number(row.waiting), holder: holderOf(row) };
}

function holderOf(row: Row): ChangeLogHolder | undefined {
  if (!row.running) return undefined;
  if (row.pid !== null) {
    return {
      by: "transaction",
      pid: Number(row.pid),
      xid: row.xid,
      // NULL for other roles' sessions without pg_read_all_stats: left out, not guessed.
      ...(row.state === null ? {} : { state: row.state }),
      ...(row.application_name === null ? {} : { applicationName: row.application_name }),
      ...(row.usename === null ? {} : { user: row.usename }),
      ...(row.datname === null ? {} : { database: row.datname }),
      ...(row.started_ms === null ? {} : { startedAt: new Date(Number(row.started_ms)).toISOString() }),
      ...(row.age_ms === null ? {} : { ageMs: Number(row.age_ms) }),
    };
  }
  if (row.gid !== null && row.prepared_ms !== null) {
    return {
      by: "prepared_transaction",
      xid: row.xid,
      gid: row.gid,
      owner: row.owner ?? "",
      database: row.database ?? "",
      startedAt: new Date(Number(row.prepared_ms)).toISOString(),
      ageMs: Number(row.prepared_age_ms ?? "0"),
    };
  }
  return { by: "unknown", xid: row.xid };
}
