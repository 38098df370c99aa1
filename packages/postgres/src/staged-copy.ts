import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { canonicalJson, IdempotencyConflictError, type UsageObservation } from "@latch/core";
import { hashCanonical } from "./hash.js";
import type { PoolLike } from "./queryable.js";

/**
 * `from` of `pg-copy-streams`: returns a COPY … FROM STDIN stream to pass to a client's
 * `query()`. Typed structurally, so `pg-copy-streams` stays your dependency, not ours.
 */
export type CopyFrom = (sql: string) => NodeJS.WritableStream;

/** COPY text format: JSON and ids need only the backslash escaped (JSON escapes tabs and newlines). */
const copyText = (text: string) => text.replaceAll("\\", "\\\\");
const STAGE = "pg_temp.latch_stage_observations";

/**
 * Appends a batch through a temporary stage: COPY the rows in (hashing them while the server
 * parses the previous chunk), then one `INSERT … SELECT … ON CONFLICT DO NOTHING`, then the
 * hash comparison, all in one transaction on one pooled session. Same results and errors as
 * the single-statement path. Returns the ids it inserted.
 * @internal
 */
export async function appendStaged(
  pool: PoolLike,
  copyFrom: CopyFrom,
  table: string,
  observations: readonly UsageObservation[],
): Promise<Set<string>> {
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
  try {
    await client.query("BEGIN");
    try {
      await client.query(
        `CREATE TEMP TABLE IF NOT EXISTS latch_stage_observations
           (event_id text COLLATE "C", hash text, payload jsonb) ON COMMIT DELETE ROWS`,
      );
      let conflict: IdempotencyConflictError | undefined;
      let unique = 0;
      const firstHash = new Map<string, string>();
      function* chunks(): Generator<string> {
        let lines: string[] = [];
        for (const observation of observations) {
          const canonical = canonicalJson(observation);
          const hash = hashCanonical(canonical);
          const seen = firstHash.get(observation.eventId);
          if (seen === undefined) {
            firstHash.set(observation.eventId, hash);
            unique++;
            lines.push(`${copyText(observation.eventId)}\t${hash}\t${copyText(canonical)}\n`);
            if (lines.length === 500) {
              yield lines.join("");
              lines = [];
            }
          } else if (seen !== hash) {
            conflict = new IdempotencyConflictError({
              id: observation.eventId,
              existingHash: seen,
              incomingHash: hash,
            });
            return;
          }
        }
        if (lines.length > 0) yield lines.join("");
      }
      const stream = (client as unknown as { query<T>(submittable: T): T }).query(
        copyFrom(`COPY ${STAGE} (event_id, hash, payload) FROM STDIN`),
      );
      await pipeline(Readable.from(chunks()), stream);
      if (conflict !== undefined) throw conflict;
      const { rows } = await client.query(
        `WITH ins AS (
           INSERT INTO ${table} (event_id, hash, payload) SELECT event_id, hash, payload FROM ${STAGE}
           ON CONFLICT (event_id) DO NOTHING RETURNING event_id)
         SELECT coalesce(array_agg(event_id), '{}') AS ids FROM ins`,
      );
      const inserted = new Set((rows[0] as { ids: string[] }).ids);
      if (inserted.size < unique) {
        // A new statement sees rows concurrent writers committed while the insert waited on them.
        const clash = await client.query(
          `SELECT s.event_id, o.hash AS existing, s.hash AS incoming FROM ${STAGE} s
           JOIN ${table} o ON o.event_id = s.event_id WHERE o.hash <> s.hash LIMIT 1`,
        );
        const row = clash.rows[0] as { event_id: string; existing: string; incoming: string } | undefined;
        if (row !== undefined) {
          throw new IdempotencyConflictError({
            id: row.event_id,
            existingHash: row.existing,
            incomingHash: row.incoming,
          });
        }
      }
      await client.query("COMMIT");
      return inserted;
    } catch (error) {
      await client.query("ROLLBACK").catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw error;
    }
  } catch (error) {
    if (!(error instanceof IdempotencyConflictError) && broken === undefined) {
      broken = error instanceof Error ? error : new Error(String(error));
    }
    throw error;
  } finally {
    events.removeListener?.("error", onError);
    // A session whose connection failed is destroyed rather than returned to the pool.
    client.release(broken);
  }
}
