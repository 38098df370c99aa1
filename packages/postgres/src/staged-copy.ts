import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { UsageObservation } from "@latch/core";
import { canonicalJson, hashCanonicalJson } from "@latch/core/adapter";
import { IdempotencyConflictError } from "@latch/core/errors";
import { asBusy } from "./busy-error.js";
import { whenIdle } from "./client-ready.js";
import type { PoolLike, Queryable } from "./queryable.js";
import { sqlState } from "./schema.js";
import { beforeHorizon } from "./sql-errors.js";
import { beginScript, runScript, type TransactionSettings } from "./transaction.js";

/**
 * `from` of `pg-copy-streams`: returns a COPY … FROM STDIN stream to pass to a client's
 * `query()`. Typed structurally, so `pg-copy-streams` stays your dependency, not ours.
 */
export type CopyFrom = (sql: string) => NodeJS.WritableStream;

/**
 * A field in COPY's text format: backslash, tab (the column separator), newline and carriage
 * return (row ends) are written as `\\`, `\t`, `\n` and `\r`, so an id holding any of them is
 * stored exactly. (Canonical JSON never holds a raw control character; ids may.)
 */
const COPY_SPECIAL = /[\\\t\n\r]/g;
const COPY_ESCAPES: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "\t": "\\t",
  "\n": "\\n",
  "\r": "\\r",
};
const copyText = (text: string) => text.replace(COPY_SPECIAL, (c) => COPY_ESCAPES[c] as string);
/** COPY data is sent in chunks of about this many UTF-16 code units. */
const CHUNK = 256 * 1024;
const STAGE = "pg_temp.latch_stage_observations";
const UNIQUE_VIOLATION = "23505";

/**
 * The batch as COPY text (`event_id \t hash \t canonical JSON`), produced lazily chunk by
 * chunk — each row serialised once, the canonical JSON serving as both the hash input and the
 * jsonb text — and kept, so a second COPY of the batch replays it without hashing again.
 * Ids repeated in the batch are sent once; two payloads for one id end the rows early and set
 * `conflict`, which the caller must check after the COPY (and then roll back).
 */
class CopyRows {
  conflict: IdempotencyConflictError | undefined;
  /** Distinct ids produced so far (all of them once the rows were streamed to the end). */
  unique = 0;
  readonly #observations: readonly UsageObservation[];
  readonly #chunks: string[] = [];
  #next = 0;
  readonly #firstHash = new Map<string, string>();

  constructor(observations: readonly UsageObservation[]) {
    this.#observations = observations;
  }

  /** A fresh pass over every chunk: the ones made already, then new ones. */
  *stream(): Generator<string> {
    for (let i = 0; ; i++) {
      if (i === this.#chunks.length && !this.#produce()) return;
      yield this.#chunks[i] as string;
    }
  }

  /** Makes the next chunk; false when the rows are exhausted (or ended by a conflict). */
  #produce(): boolean {
    const observations = this.#observations;
    let chunk = "";
    while (this.#next < observations.length && this.conflict === undefined) {
      const observation = observations[this.#next++] as UsageObservation;
      const canonical = canonicalJson(observation);
      const hash = hashCanonicalJson(canonical);
      const seen = this.#firstHash.get(observation.eventId);
      if (seen === undefined) {
        this.#firstHash.set(observation.eventId, hash);
        this.unique++;
        chunk += `${copyText(observation.eventId)}\t${hash}\t${copyText(canonical)}\n`;
        if (chunk.length >= CHUNK) break;
      } else if (seen !== hash) {
        this.conflict = new IdempotencyConflictError({
          id: observation.eventId,
          existingHash: seen,
          incomingHash: hash,
        });
      }
    }
    if (chunk.length === 0) return false;
    this.#chunks.push(chunk);
    return true;
  }
}

/** COPYs the rows; resolves with the rows the server stored (`undefined` when the stream does not say). */
async function copyIn(
  client: Queryable,
  copyFrom: CopyFrom,
  sql: string,
  rows: CopyRows,
): Promise<number | undefined> {
  const stream = (client as unknown as { query<T>(submittable: T): T }).query(copyFrom(sql));
  await pipeline(Readable.from(rows.stream()), stream);
  const stored = (stream as unknown as { rowCount?: unknown }).rowCount;
  return typeof stored === "number" ? stored : undefined;
}

/** A direct COPY that met stored ids: the stage path answers the batch instead. */
class StoredIdsMet extends Error {}

/**
 * Appends a batch with COPY, in one transaction on one pooled session, with the same results
 * and errors as the single-statement path.
 *
 * When `direct` is set it first COPYs the rows straight into the table: a batch of ids none of
 * which is stored (the usual case) is then written at the speed of a plain COPY, and every
 * row is `appended`. Any stored id makes that COPY fail with a unique violation, which rolls
 * it back wholly; the batch then goes through a temporary stage (replaying the COPY text, not
 * hashing again): COPY into the stage, one `INSERT … SELECT … ON CONFLICT DO NOTHING`, then
 * the hash comparison. Returns the ids it inserted, or `"all"` when it inserted every distinct
 * id of the batch.
 * @internal
 */
export async function appendCopy(
  pool: PoolLike,
  copyFrom: CopyFrom,
  table: string,
  observations: readonly UsageObservation[],
  direct: boolean,
  settings: TransactionSettings,
): Promise<Set<string> | "all"> {
  const client = await pool.connect();
  let broken: Error | undefined;
  // A checked-out pg client that loses its connection emits "error"; without a listener that
  // would crash the process. The failed query rejects on its own; just mark the session broken.
  const events = client as unknown as Partial<{
    on(event: "error", listener: (error: Error) => void): unknown;
    removeListener(event: "error", listener: (error: Error) => void): unknown;
  }>;
  const onError = (error: Error) => {
    broken ??= error;
  };
  events.on?.("error", onError);
  const rows = new CopyRows(observations);
  /** Runs `fn` in one transaction of ours on the client, rolling back on any error. */
  const transaction = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      await runScript(client, beginScript(settings));
      const result = await fn();
      await client.query("COMMIT");
      return result;
    } catch (error) {
      // A failed COPY rejects before the server is ready for the next query: wait for that.
      await whenIdle(client);
      await client.query("ROLLBACK").catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    }
  };
  try {
    if (direct) {
      try {
        return await transaction(async () => {
          const stored = await copyIn(
            client,
            copyFrom,
            `COPY ${table} (event_id, hash, payload) FROM STDIN`,
            rows,
          );
          if (rows.conflict !== undefined) throw rows.conflict;
          // Migration 0017's key trigger skips a row whose id is stored (no unique violation on
          // the partitioned table): fewer rows stored than sent means stored ids were met.
          if (stored === undefined || stored < rows.unique) throw new StoredIdsMet();
          return "all" as const;
        });
      } catch (error) {
        // A stored id: fall back to the stage. Anything else is the batch's answer.
        const met = error instanceof StoredIdsMet || sqlState(error) === UNIQUE_VIOLATION;
        if (!met || broken !== undefined) throw error;
      }
    }
    return await transaction(async () => {
      await client.query(
        `CREATE TEMP TABLE IF NOT EXISTS latch_stage_observations
           (event_id text COLLATE "C", hash text, payload jsonb) ON COMMIT DELETE ROWS`,
      );
      await copyIn(client, copyFrom, `COPY ${STAGE} (event_id, hash, payload) FROM STDIN`, rows);
      if (rows.conflict !== undefined) throw rows.conflict;
      // The inserted ids come back only when some id already existed: a batch of new ids
      // answers with its count alone.
      const { rows: result } = await client.query(
        `WITH ins AS (
           INSERT INTO ${table} (event_id, hash, payload) SELECT event_id, hash, payload FROM ${STAGE}
           ON CONFLICT DO NOTHING RETURNING event_id)
         SELECT CASE WHEN count(*) < $1::int THEN coalesce(array_agg(event_id), '{}') END AS ids FROM ins`,
        [rows.unique],
      );
      const ids = (result[0] as { ids: string[] | null }).ids;
      if (ids === null) return "all" as const;
      // A new statement sees rows concurrent writers committed while the insert waited on them.
      const clash = await client.query(
        // One index probe per staged row (LATERAL … LIMIT 1): a join would let the planner
        // scan the whole table whenever its statistics are missing or stale.
        `SELECT s.event_id, o.hash AS existing, s.hash AS incoming FROM ${STAGE} s
         CROSS JOIN LATERAL (SELECT o.hash FROM ${table} o WHERE o.event_id = s.event_id LIMIT 1) o
         WHERE o.hash <> s.hash LIMIT 1`,
      );
      const found = clash.rows[0] as { event_id: string; existing: string; incoming: string } | undefined;
      if (found !== undefined) {
        throw new IdempotencyConflictError({
          id: found.event_id,
          existingHash: found.existing,
          incomingHash: found.incoming,
        });
      }
      return new Set(ids);
    });
  } catch (error) {
    if (!(error instanceof IdempotencyConflictError) && broken === undefined) {
      broken = error instanceof Error ? error : new Error(String(error));
    }
    throw beforeHorizon(error) ?? asBusy(error);
  } finally {
    events.removeListener?.("error", onError);
    // A session whose connection failed is destroyed rather than returned to the pool.
    client.release(broken);
  }
}
