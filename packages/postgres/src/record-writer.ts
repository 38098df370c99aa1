import { Buffer } from "node:buffer";
import {
  LatchValidationError,
  parseObservation,
  type RatedUsageRecord,
  type UsageObservation,
} from "@latch/core";
import {
  checkVersionShape,
  hashCanonicalJson,
  isSealedRecord,
  isWellFormedText,
  observationCanonicalJson,
  parseWith,
  RatedUsageRecordSchema,
  type RecordWriteResult,
  type RecordWriter,
} from "@latch/core/adapter";
import { IdempotencyConflictError } from "@latch/core/errors";
import { asBusy, busyReason } from "./busy-error.js";
import { whenIdle } from "./client-ready.js";
import { GroupCommit, type GroupCommitSettings } from "./group-commit.js";
import { isPool, type PoolLike, type Queryable, type QueryResultLike } from "./queryable.js";
import { parseRecord, toRow } from "./rated-record-store.js";
import { assertMigrated, quoteSchema, sqlState } from "./schema.js";
import {
  beforeHorizon,
  CONFLICT_STATE,
  detailField,
  detailId,
  parseStored,
  rethrowConflict,
} from "./sql-errors.js";
import { beginScript, type TransactionSettings, transact } from "./transaction.js";

/** One call, checked and serialised by its caller before it joins a batch. */
interface Call {
  readonly eventId: string;
  /** The observation's canonical hash. */
  readonly hash: string;
  /** The observation's canonical JSON (its stored payload). */
  readonly observation: string;
  readonly record:
    | { readonly id: string; readonly row: string; readonly value: RatedUsageRecord }
    | undefined;
}

interface Pending extends Call {
  resolve(result: RecordWriteResult): void;
  reject(error: unknown): void;
}

/** One event of a batch: the calls that name it with its first payload, in arrival order. */
interface BatchEvent {
  readonly eventId: string;
  readonly hash: string;
  readonly observation: string;
  readonly record: Call["record"];
  readonly calls: Pending[];
}

interface Plan {
  /** By eventId, so every batch takes its row locks in one order (no deadlock between batches). */
  readonly events: BatchEvent[];
  /** Calls with another payload for an eventId earlier in the batch: conflicts once it commits. */
  readonly conflicts: Array<{ call: Pending; existingHash: string }>;
}

/** What the transaction answered: the ids it appended, and each event's current rated record. */
interface Outcome {
  readonly appended: ReadonlySet<string>;
  /** `payload` is null for a version this transaction stored (the caller holds it already). */
  readonly current: ReadonlyMap<string, { ratedRecordId: string; payload: unknown }>;
}

/** Attempts of a batch the server aborted with a serialization failure or a deadlock, or that met a rated record stored meanwhile. */
const ATTEMPTS = 3;

/**
 * A string literal that reads back as `text` whatever `standard_conforming_strings` says, and
 * all ASCII. The server converts a query from the session's `client_encoding` before it lexes
 * it: in a client-only encoding (SJIS, BIG5, GBK, …) the last byte of a UTF-8 character would
 * take the backslash after it as its second byte and leave a quote unescaped, ending the
 * literal. So text with other characters goes whole as its UTF-8 bytes in hex, converted on
 * the server (which also works on a `SQL_ASCII` database, where a `\U` escape does not). One
 * expression, not pieces joined with `||`: a chain as long as the text's runs of such
 * characters would nest as deep in the server's parser, past its stack limit.
 * @internal
 */
export function literal(text: string): string {
  // All ASCII exactly when its UTF-8 is as long as its UTF-16 (any other code unit takes two
  // bytes or more): a count in native code, several times cheaper than a regex scan of a
  // batch's JSON. Each replacement runs only on text that holds what it replaces.
  if (Buffer.byteLength(text, "utf8") === text.length) {
    let escaped = text;
    if (escaped.includes("\\")) escaped = escaped.replace(/\\/g, "\\\\");
    if (escaped.includes("'")) escaped = escaped.replace(/'/g, "''");
    return `E'${escaped}'`;
  }
  const hex = Buffer.from(text, "utf8").toString("hex");
  return `pg_catalog.convert_from(pg_catalog.decode('${hex}', 'hex'), 'UTF8')`;
}

/** A text[] constant. */
function textArray(values: readonly string[]): string {
  return `ARRAY[${values.map(literal).join(",")}]::text[]`;
}

/**
 * The batch's five statements, run by migration 0019's `record_batch` (where each one's shape
 * is explained): the new observations, the idempotency check, the new rated records, the
 * priced mark, then one row per event (`n`, its position in `ids`, `appended`, and its current
 * record's `current_id` and `current_payload` as UTF-8 bytes, the payload NULL for a version
 * this transaction stored from the call). A PL/pgSQL
 * function keeps its plans for the life of the connection: a batch is not planned again.
 */
function recordBatch(
  q: string,
  observations: string,
  checks: string,
  records: string,
  ids: string,
  ours: string,
) {
  return `SELECT n, appended, current_id, current_payload
    FROM ${q}.record_batch(${observations}::jsonb, ${checks}::jsonb, ${records}::jsonb, ${ids}::text[], ${ours}::text[])`;
}

/** `record_batch`'s observations (`priced` when a record comes with the event) and its checks. */
function observationRows(
  events: ReadonlyArray<Pick<BatchEvent, "eventId" | "hash" | "observation" | "record">>,
) {
  const rows: string[] = [];
  const checks: string[] = [];
  for (const e of events) {
    const head = `{"event_id":${JSON.stringify(e.eventId)},"hash":"${e.hash}"`;
    rows.push(`${head},"priced":${e.record !== undefined},"payload":${e.observation}}`);
    checks.push(`${head},"payload":{}}`);
  }
  return { rows: `[${rows.join(",")}]`, checks: `[${checks.join(",")}]` };
}

/**
 * A bytea column as the UTF-8 text it holds: a Buffer (pg), a Uint8Array (PGlite), or the
 * server's hex text when the application replaced pg's bytea parser.
 */
function utf8(value: unknown): string {
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("utf8");
  if (typeof value === "string" && value.startsWith("\\x"))
    return Buffer.from(value.slice(2), "hex").toString("utf8");
  throw new TypeError(`record_batch answered ${typeof value} for a bytea column`);
}

/**
 * `record_batch`'s rows: the event by its position in `ids` (what was sent as `p_ids`), its
 * record's id and payload as UTF-8 bytes, so the session's client_encoding cannot alter them.
 */
function outcome(result: QueryResultLike, ids: readonly string[]): Outcome {
  const rows = result.rows as Array<{
    n: number;
    appended: boolean;
    current_id: unknown;
    current_payload: unknown;
  }>;
  const appended = new Set<string>();
  const current = new Map<string, { ratedRecordId: string; payload: unknown }>();
  for (const r of rows) {
    const id = ids[Number(r.n) - 1];
    if (id === undefined) throw new TypeError(`record_batch answered event ${String(r.n)} of ${ids.length}`);
    if (r.appended) appended.add(id);
    if (r.current_id === null) continue;
    const payload = r.current_payload === null ? null : (JSON.parse(utf8(r.current_payload)) as unknown);
    current.set(id, { ratedRecordId: utf8(r.current_id), payload });
  }
  return { appended, current };
}

/** Checks a call's arguments (`invalid_input` naming the field) and serialises them once. */
function prepare(observation: UsageObservation, record: RatedUsageRecord | undefined): Call {
  const obs = parseObservation(observation);
  // Serialised once per parsed observation (cached on it), not once per use.
  const canonical = observationCanonicalJson(obs);
  const hash = hashCanonicalJson(canonical);
  if (record === undefined) return { eventId: obs.eventId, hash, observation: canonical, record: undefined };
  // A record the default engine just sealed is valid by construction and frozen since: parsing
  // it again would only repeat the engine's checks (a third of this call's CPU). Its snapshotId
  // is still checked: the snapshot schema refuses U+0000 and lone surrogates there, but a
  // pricing source that skips that schema could hand the engine one, and jsonb cannot hold it.
  let parsed: RatedUsageRecord;
  if (isSealedRecord(record) && isWellFormedText(record.snapshotId)) parsed = record;
  else {
    parsed = parseWith(RatedUsageRecordSchema, record, "RecordWriter.write", "record");
    checkVersionShape(parsed, "record");
  }
  if (parsed.version !== 1) {
    throw LatchValidationError.at("RecordWriter.write", "record.version", "must be 1 (a first rating)");
  }
  if (parsed.observation !== obs && observationCanonicalJson(parsed.observation) !== canonical) {
    throw LatchValidationError.at(
      "RecordWriter.write",
      "record.observation",
      "must be the observation written",
    );
  }
  const row = JSON.stringify(toRow(parsed));
  return {
    eventId: obs.eventId,
    hash,
    observation: canonical,
    record: { id: parsed.ratedRecordId, row, value: parsed },
  };
}

function plan(calls: readonly Pending[]): Plan {
  const byId = new Map<
    string,
    { hash: string; observation: string; record: Call["record"]; calls: Pending[] }
  >();
  const conflicts: Plan["conflicts"] = [];
  for (const call of calls) {
    const event = byId.get(call.eventId);
    if (event === undefined) {
      // Literals of one shape, not spreads: a spread copies every own property (the call's
      // callbacks too) through a generic path, per call.
      byId.set(call.eventId, {
        hash: call.hash,
        observation: call.observation,
        record: call.record,
        calls: [call],
      });
    } else if (event.hash !== call.hash) {
      conflicts.push({ call, existingHash: event.hash });
    } else {
      event.calls.push(call);
      // The same call again: a later copy that was priced prices an unpriced first one.
      event.record ??= call.record;
    }
  }
  const events: BatchEvent[] = [];
  for (const [eventId, e] of byId) {
    events.push({ eventId, hash: e.hash, observation: e.observation, record: e.record, calls: e.calls });
  }
  events.sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0));
  return { events, conflicts };
}

/** Answers every call of a committed plan; a stored record that does not parse fails its own calls only. */
function settle({ events, conflicts }: Plan, { appended, current }: Outcome): void {
  for (const event of events) {
    const stored = current.get(event.eventId);
    let record: RatedUsageRecord | undefined;
    try {
      if (stored === undefined) record = undefined;
      else if (stored.payload === null && stored.ratedRecordId === event.record?.id)
        record = event.record.value;
      else record = parseStored(stored.ratedRecordId, stored.payload, parseRecord);
    } catch (error) {
      for (const call of event.calls) call.reject(error);
      continue;
    }
    event.calls.forEach((call, i) => {
      call.resolve({
        observation: i === 0 && appended.has(event.eventId) ? "appended" : "already_exists",
        current: record,
      });
    });
  }
  for (const { call, existingHash } of conflicts) {
    call.reject(new IdempotencyConflictError({ id: call.eventId, existingHash, incomingHash: call.hash }));
  }
}

/**
 * A refusal of what a row holds (a data exception, a constraint, a trigger's RAISE): another
 * call of the batch may well pass on its own. A lost connection, a timeout or a missing object
 * fails every call alike.
 */
function refusesRow(state: string | undefined): boolean {
  return state !== undefined && (state.startsWith("22") || state.startsWith("23") || state.startsWith("P0"));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

type ClientEvents = Partial<{
  on(event: "error", listener: (error: Error) => void): unknown;
  removeListener(event: "error", listener: (error: Error) => void): unknown;
}>;

/**
 * `PostgresObservationStore.recordWriter(rated)`: the observation, its rated record and the
 * priced mark in one transaction. On a pool, one simple query (`BEGIN; …; COMMIT`): one round
 * trip and one commit per batch, the batch gathered by group commit. On a single session
 * (a `Client`, a `PoolClient` inside your transaction, PGlite), one call at a time in a
 * transaction of the store's (or yours), with bound parameters.
 * @internal
 */
export class PostgresRecordWriter implements RecordWriter {
  readonly #db: Queryable;
  readonly #schema: string;
  readonly #q: string;
  readonly #settings: TransactionSettings;
  readonly #group: GroupCommit<Pending> | undefined;

  constructor(
    db: Queryable,
    schema: string,
    settings: TransactionSettings,
    group: GroupCommitSettings | undefined,
  ) {
    this.#db = db;
    this.#schema = schema;
    this.#q = quoteSchema(schema);
    this.#settings = settings;
    this.#group =
      group !== undefined && isPool(db)
        ? new GroupCommit(
            group,
            (batch) => this.#commit(db, batch),
            (call) => call.eventId,
          )
        : undefined;
  }

  async write(
    observation: UsageObservation,
    record: RatedUsageRecord | undefined,
    signal?: AbortSignal,
  ): Promise<RecordWriteResult> {
    signal?.throwIfAborted();
    const call = prepare(observation, record);
    await assertMigrated(this.#db, this.#schema);
    signal?.throwIfAborted();
    const db = this.#db;
    if (!isPool(db)) return this.#onSession(db, call);
    return new Promise<RecordWriteResult>((resolve, reject) => {
      const pending: Pending = {
        eventId: call.eventId,
        hash: call.hash,
        observation: call.observation,
        record: call.record,
        resolve,
        reject,
      };
      if (this.#group === undefined) void this.#commit(db, [pending]);
      else this.#group.add(pending);
    });
  }

  /** Commits a batch and answers each of its calls; never rejects. */
  async #commit(pool: PoolLike, calls: Pending[]): Promise<void> {
    let rest = calls;
    for (let attempt = 1; rest.length > 0; attempt++) {
      const batch = plan(rest);
      try {
        settle(batch, await this.#script(pool, batch));
        return;
      } catch (error) {
        const state = sqlState(error);
        if (state === CONFLICT_STATE) {
          const id = detailId(error);
          const incoming = detailField(error, "incomingHash");
          if (batch.events.some((e) => e.eventId === id && e.hash === incoming)) {
            // A stored observation with another payload: its calls (those that differ from it)
            // fail; the rest of the batch goes again without them.
            const existingHash = detailField(error, "existingHash");
            const refused = rest.filter((c) => c.eventId === id && c.hash !== existingHash);
            for (const call of refused) {
              call.reject(new IdempotencyConflictError({ id, existingHash, incomingHash: call.hash }));
            }
            rest = rest.filter((c) => !refused.includes(c));
            attempt = 0;
            continue;
          }
          // A rated record another writer stored meanwhile: the next attempt reads it.
          if (attempt < ATTEMPTS) continue;
        }
        const reason = busyReason(error);
        if ((reason === "serialization_failure" || reason === "deadlock") && attempt < ATTEMPTS) {
          await sleep(Math.random() * 10 * 2 ** attempt);
          continue;
        }
        if (refusesRow(state) && rest.length > 1) {
          // A row the server refused: every call on its own, so only that one fails.
          await Promise.all(rest.map((call) => this.#commit(pool, [call])));
          return;
        }
        const failure = beforeHorizon(error) ?? asBusy(error);
        for (const call of rest) call.reject(failure);
        return;
      }
    }
  }

  /** One simple query on a client of the pool: BEGIN, `record_batch` with the batch as literals, COMMIT. */
  async #script(pool: PoolLike, { events }: Plan): Promise<Outcome> {
    const records = events.flatMap((e) => (e.record === undefined ? [] : [e.record.row]));
    const { rows, checks } = observationRows(events);
    const ids = events.map((e) => e.eventId);
    const script = [
      beginScript(this.#settings),
      recordBatch(
        this.#q,
        literal(rows),
        literal(checks),
        literal(`[${records.join(",")}]`),
        textArray(ids),
        textArray(events.flatMap((e) => (e.record === undefined ? [] : [e.record.id]))),
      ),
      "COMMIT",
    ].join(";\n");
    const client = await pool.connect();
    let broken: Error | undefined;
    const onError = (error: Error) => {
      broken ??= error;
    };
    const emitter = client as unknown as ClientEvents;
    emitter.on?.("error", onError);
    try {
      const results = (await client.query(script)) as unknown as QueryResultLike[];
      // BEGIN, SET ×3, record_batch, COMMIT
      return outcome(results[results.length - 2] as QueryResultLike, ids);
    } catch (error) {
      if (sqlState(error) === undefined) onError(error instanceof Error ? error : new Error(String(error)));
      else {
        await whenIdle(client); // pg rejects a failed query before the server is ready again
        await client.query("ROLLBACK").catch((rollbackError: unknown) => {
          onError(rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError)));
        });
      }
      throw error;
    } finally {
      emitter.removeListener?.("error", onError);
      client.release(broken);
    }
  }

  /** One call in one transaction on a single session (or inside the caller's), with parameters. */
  #onSession(db: Queryable, call: Call): Promise<RecordWriteResult> {
    const { rows, checks } = observationRows([call]);
    const records = call.record === undefined ? "[]" : `[${call.record.row}]`;
    const ours = call.record === undefined ? [] : [call.record.id];
    const text = recordBatch(this.#q, "$1", "$2", "$3", "$4", "$5");
    return new Promise<RecordWriteResult>((resolve, reject) => {
      const batch = plan([{ ...call, resolve, reject }]);
      transact(db, this.#settings, async (tx) =>
        outcome(await tx.query(text, [rows, checks, records, [call.eventId], ours]), [call.eventId]),
      ).then(
        (result) => settle(batch, result),
        (error: unknown) => {
          try {
            rethrowConflict(error);
          } catch (thrown) {
            reject(thrown);
          }
        },
      );
    });
  }
}
