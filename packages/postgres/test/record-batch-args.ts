/**
 * `record_batch`'s arguments for the parity tests of migrations 0020 and 0021 (and their
 * adversarial cases): observations, checks and rated records described briefly, turned into the
 * five parameters the record writer sends; and a shipped migration's `record_batch`, frozen
 * under another name so a test can run it beside the current one.
 */
import type pg from "pg";
import { MIGRATIONS } from "../src/migrations/index.js";

/**
 * Migration `version`'s `record_batch` as shipped, renamed `record_batch_00<version>`: install
 * it with the schema first on the search path.
 */
export function frozenRecordBatch(version: number): string {
  const sql = MIGRATIONS.find((m) => m.version === version)?.sql ?? "";
  const head = /CREATE (OR REPLACE )?FUNCTION record_batch\(/.exec(sql);
  if (head === null) throw new Error(`migration ${version} has no record_batch`);
  const end = sql.indexOf("$fn$;", head.index) + "$fn$;".length;
  if (end <= head.index) throw new Error(`migration ${version}'s record_batch has no end`);
  return sql
    .slice(head.index, end)
    .replace(head[0], `CREATE FUNCTION record_batch_${String(version).padStart(4, "0")}(`);
}

export interface Obs {
  id: string | null;
  hash: string | null;
  /** The completion month; null: a payload without timing.completedAt. */
  month?: string | null;
  priced?: boolean;
}
export interface Rec {
  id: string | null;
  event: string | null;
  hash: string;
  month?: string;
  version?: number;
  total?: string;
  currency?: string | null;
  completedText?: string;
}

export const payload = (o: Obs) =>
  o.month === null
    ? { eventId: o.id }
    : { eventId: o.id, timing: { completedAt: `${o.month ?? "2026-03"}-01T12:00:00.000Z` } };

export function recordRow(r: Rec) {
  const month = r.month ?? "2026-03";
  return {
    rated_record_id: r.id,
    event_id: r.event,
    version: r.version ?? 1,
    hash: r.hash,
    payload: { ratedRecordId: r.id, hash: r.hash },
    currency: r.currency === undefined ? "USD" : r.currency,
    total: r.total ?? "0.000123",
    completed_ms: Date.parse(`${month}-01T12:00:00.000Z`),
    completed_text: r.completedText ?? `${month}-01T12:00:00.000Z`,
    completed_day: `${month}-01`,
    provider: "p",
    model: "m",
    tenant_id: "t",
    org_id: "",
    project_id: "",
    api_key_id: "",
    end_user_id: "",
    feature: "",
    success: true,
    input_tokens: 1,
    output_tokens: 1,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    total_tokens: 2,
  };
}

/** A call's arguments: observations, checks and records in the order given (not sorted). */
export interface Batch {
  obs: Obs[];
  records?: Rec[];
  /** Default: one per observation, with its hash. */
  checks?: Array<{ id: string | null; hash: string | null; month?: string | null }>;
  /** p_checks as given (e.g. not an array), instead of checks. */
  rawChecks?: unknown;
  /** p_ids as given; default: each observation's id once, in batch order. */
  ids?: Array<string | null>;
}
export function args(b: Batch) {
  const ids = [...new Set(b.obs.map((o) => o.id).filter((id): id is string => id !== null))];
  const checks = b.checks ?? b.obs.map((o) => ({ id: o.id, hash: o.hash, month: undefined }));
  return [
    JSON.stringify(
      b.obs.map((o) => ({
        event_id: o.id,
        hash: o.hash,
        payload: payload(o),
        priced: o.priced ?? (b.records ?? []).some((r) => r.event === o.id),
      })),
    ),
    b.rawChecks !== undefined
      ? JSON.stringify(b.rawChecks)
      : JSON.stringify(
          checks.map((c) => ({
            event_id: c.id,
            hash: c.hash,
            payload: c.month === undefined ? {} : payload({ id: c.id, hash: c.hash, month: c.month }),
          })),
        ),
    JSON.stringify((b.records ?? []).map(recordRow)),
    b.ids !== undefined ? b.ids : ids,
    (b.records ?? []).flatMap((r) => (r.id === null ? [] : [r.id])),
  ];
}

/** Every id a batch names (observations, checks, `ids`), once each. */
export function batchIds(b: Batch): string[] {
  return [
    ...new Set(
      [...b.obs, ...(b.checks ?? []), ...(b.ids ?? []).map((i) => ({ id: i }))]
        .map((o) => o.id)
        .filter((id): id is string => id !== null),
    ),
  ];
}

/** What a call answered (its rows and the state it left) or the error it raised. */
export type Answer =
  | { rows: unknown[]; state: unknown }
  | { code?: string; message?: string; detail?: string };

/**
 * `record_batch` functions of the schema `q` (quoted) called on `client`: `call(fn)` is the
 * writer's statement for function `fn`, `state` reads every row and key of some ids, `run`
 * makes one call in a transaction of its own (rolled back) and answers what it saw.
 */
export function recordBatchRunner(client: pg.Client, q: string) {
  const call = (fn: string) =>
    `SELECT n, appended, convert_from(current_id, 'UTF8') AS id,
       convert_from(current_payload, 'UTF8')::jsonb AS payload
     FROM ${q}.${fn}($1::jsonb, $2::jsonb, $3::jsonb, $4::text[], $5::text[]) ORDER BY n`;

  /** Every row and key of the given ids; rated records in change-log order. */
  async function state(db: pg.Client, ids: string[]) {
    const one = async (sql: string) => (await db.query(sql, [ids])).rows;
    return {
      observations: await one(
        `SELECT event_id, hash, priced, payload FROM ${q}.observations WHERE event_id = ANY ($1) ORDER BY event_id, hash`,
      ),
      rated: await one(
        `SELECT rated_record_id, event_id, version, hash, is_current, total::text, completed_at
         FROM ${q}.rated_records WHERE event_id = ANY ($1) ORDER BY xid, id`,
      ),
      observationKeys: await one(
        `SELECT event_id, month FROM ${q}.observation_keys WHERE event_id = ANY ($1) ORDER BY event_id`,
      ),
      ratedKeys: await one(
        `SELECT rated_record_id, event_id, version, month FROM ${q}.rated_record_keys
         WHERE event_id = ANY ($1) ORDER BY rated_record_id`,
      ),
      flag: (await db.query(`SELECT coalesce(current_setting('latch.keys_written', true), '') AS f`)).rows[0]
        .f,
    };
  }

  /** One call in a transaction of its own, rolled back; `setup` runs first in it. */
  async function run(fn: string, b: Batch, setup?: string): Promise<Answer> {
    const a = args(b);
    const ids = batchIds(b);
    await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
    try {
      if (setup !== undefined) await client.query(setup);
      const { rows } = await client.query(call(fn), a);
      return { rows, state: await state(client, ids) };
    } catch (error) {
      const e = error as { code?: string; message?: string; detail?: string };
      // A refused row's DETAIL shows its created_at (the transaction's now()), and a rated
      // record's its id and xid (a sequence and a transaction id: another in each run).
      return {
        code: e.code,
        message: e.message,
        detail: e.detail
          ?.replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00/g, "<now>")
          .replace(/^Failing row contains \(\d+, \d+, /, "Failing row contains (<id>, <xid>, "),
      };
    } finally {
      await client.query("ROLLBACK");
    }
  }

  return { call, state, run };
}
