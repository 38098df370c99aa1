import { z } from "zod";
import {
  type ChangeLogStatus,
  type ChangeLogStatusQuery,
  parseChangeLogStatusQuery,
} from "../contracts/change-log-status.js";
import { ratedRecordHash } from "../contracts/hashing.js";
import {
  ConsumerNameSchema,
  ChangeLogLimitSchema as LimitSchema,
  RatedRecordIdSchema,
} from "../contracts/inputs.js";
import type { ChangeLogEntry, PutResult, RatedRecordStore } from "../contracts/rated-record-store.js";
import { checkVersionChain } from "../contracts/version-chain.js";
import { IdempotencyConflictError, LatchValidationError } from "../errors/index.js";
import { isParsedObservation } from "../observation/parse.js";
import { isSealedRecord } from "../rating/sealed-record.js";
import { selectLines, summarize } from "../reports/index.js";
import type { LinesPage, LinesQuery, SummaryQuery, SummaryRow } from "../reports/query.js";
import { EventIdSchema, isEventId } from "../schemas/identity.js";
import { parseWith } from "../schemas/parse.js";
import { type RatedUsageRecord, RatedUsageRecordSchema } from "../schemas/rating.js";

/** A change-log position: `0` (before the first version) or a positive decimal integer. */
const CursorSchema = z
  .string({ error: "expected a decimal integer string" })
  .regex(/^(0|[1-9][0-9]{0,15})$/, { error: "expected a decimal integer string" });

interface Stored {
  readonly record: RatedUsageRecord;
  /**
   * Its idempotency hash, computed when first needed: only a second put of its ratedRecordId
   * compares hashes, and the record is frozen, so a hash computed late is the same.
   */
  hash: string | undefined;
}

function hashOf(stored: Stored): string {
  if (stored.hash === undefined) stored.hash = ratedRecordHash(stored.record);
  return stored.hash;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Parses and freezes a copy of `input`: later changes to the caller's object change nothing here. */
function parseRecord(input: unknown, prefix: string): Stored {
  // The default engine's own output: valid by construction and deep-frozen since, so it is
  // kept as is (no parse, no copy). This is the embedded default's record() path.
  if (isSealedRecord(input)) return { record: input, hash: undefined };
  // A record built from a parsed (validated, frozen) observation keeps that observation as is:
  // re-validating and copying it would only cost time. Anything else is parsed in full.
  const observation = (input as { observation?: unknown } | null)?.observation;
  if (isParsedObservation(observation)) {
    const rest = parseWith(RecordWithoutObservation, input, "RatedUsageRecord", prefix);
    const record = deepFreeze({ ...structuredClone(rest), observation }) as RatedUsageRecord;
    return { record, hash: undefined };
  }
  const record = deepFreeze(
    structuredClone(parseWith(RatedUsageRecordSchema, input, "RatedUsageRecord", prefix)),
  );
  return { record, hash: undefined };
}

const RecordWithoutObservation = RatedUsageRecordSchema.omit({ observation: true })
  .extend({
    observation: z.unknown(),
  })
  .transform(({ observation: _observation, ...rest }) => rest);

// Set by the class's static block (which alone can reach its private members); see the functions below it.
let inlineStore: (store: unknown) => MemoryRatedRecordStore | undefined;
let putNow: (store: MemoryRatedRecordStore, record: RatedUsageRecord) => PutResult;
let currentNow: (store: MemoryRatedRecordStore, eventId: string) => RatedUsageRecord | undefined;

/**
 * The embedded {@link RatedRecordStore}: every version in process memory, with exactly the
 * contract's guarantees. `put` is idempotent by canonical hash (ignoring `ratedAt`);
 * corrections must chain (`v<n>` supersedes a stored `v<n-1>` in the same currency, else
 * `CurrencyMismatchError`); `putMany` is all-or-nothing.
 *
 * The change log is an append-only array: a version's `seq` is its 1-based position as a
 * decimal string, and a cursor is the last seq handed out (`"0"` or `undefined`: the start).
 * Reports run the reference `summarize` / `selectLines` over the current version of each event.
 *
 * Every method runs its read-check-write without an `await`, so interleaved async callers
 * cannot race. Stored records are deep-frozen copies, and what readers get back is frozen; a
 * record the default engine built is frozen already, so it is kept as is (no parse, no copy).
 * Idempotency hashes are computed only when a second put of the same id needs them.
 *
 * @example
 * const store = new MemoryRatedRecordStore();
 * await store.put(record);                          // "stored"
 * const { items, cursor } = await store.listSince(undefined, 100);
 */
export class MemoryRatedRecordStore implements RatedRecordStore {
  /**
   * Every stored version of each event, by eventId, in version order: `v<n>` at index n - 1
   * (versions chain one by one from v1), so the last is the current one. Keyed by the eventId,
   * not the ratedRecordId: one map entry per event, and a put of a new event hashes no new
   * string (the eventId was hashed when its observation was stored).
   */
  readonly #versions = new Map<string, Stored[]>();
  readonly #log: RatedUsageRecord[] = [];
  readonly #cursors = new Map<string, number>();
  /** A stored version by its id, for `checkVersionChain` (one function, not a closure per put). */
  readonly #storedRecord = (ratedRecordId: string) => this.#stored(ratedRecordId)?.record;

  /**
   * The stored version whose ratedRecordId is `ratedRecordId`, any string. A stored id is
   * `<eventId>:v<version>` (checked on every put), and the version's digits hold no ":v": the
   * last ":v" ends the eventId. The version found must carry exactly this id.
   */
  #stored(ratedRecordId: string): Stored | undefined {
    const at = ratedRecordId.lastIndexOf(":v");
    if (at === -1) return undefined;
    const version = Number(ratedRecordId.slice(at + 2));
    if (!Number.isSafeInteger(version) || version < 1) return undefined;
    const stored = this.#versions.get(ratedRecordId.slice(0, at))?.[version - 1];
    return stored !== undefined && stored.record.ratedRecordId === ratedRecordId ? stored : undefined;
  }

  async put(record: RatedUsageRecord, signal?: AbortSignal): Promise<PutResult> {
    signal?.throwIfAborted();
    return this.#put(record);
  }

  #put(record: RatedUsageRecord): PutResult {
    const incoming = parseRecord(record, "");
    const parsed = incoming.record;
    // A record the default engine sealed has the id `<eventId>:v<version>` (it built it so, and
    // it is frozen since): its stored version, if any, is found without reading the id.
    const sealed = parsed === record && isSealedRecord(record);
    const existing = sealed
      ? this.#versions.get(parsed.eventId)?.[parsed.version - 1]
      : this.#stored(parsed.ratedRecordId);
    if (existing !== undefined) return this.#duplicate(existing, incoming);
    // A first version the default engine sealed is in its chain by construction: the engine
    // built its eventId from its observation and no `supersedes` (a context naming one for
    // version 1 is refused). Anything else (a correction, a custom engine's record, a copy) is
    // checked.
    if (!sealed || parsed.version !== 1) checkVersionChain(parsed, "", this.#storedRecord);
    this.#insert(incoming);
    return "stored";
  }

  async putMany(records: readonly RatedUsageRecord[], signal?: AbortSignal): Promise<PutResult[]> {
    signal?.throwIfAborted();
    if (!Array.isArray(records)) {
      throw LatchValidationError.at("RatedUsageRecord[]", "", "expected an array of records");
    }
    const parsed = records.map((record: unknown, index) => parseRecord(record, String(index)));
    // Decide every result first, writing nothing: any failure leaves the store untouched.
    // A correction may supersede a version stored earlier in the same batch.
    const batch = new Map<string, Stored>();
    const results: PutResult[] = [];
    const toInsert: Stored[] = [];
    parsed.forEach((incoming, index) => {
      const id = incoming.record.ratedRecordId;
      const known = this.#stored(id) ?? batch.get(id);
      if (known !== undefined) {
        results.push(this.#duplicate(known, incoming));
        return;
      }
      checkVersionChain(
        incoming.record,
        String(index),
        (prev) => (this.#stored(prev) ?? batch.get(prev))?.record,
      );
      batch.set(id, incoming);
      toInsert.push(incoming);
      results.push("stored");
    });
    for (const stored of toInsert) this.#insert(stored);
    return results;
  }

  async current(eventId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined> {
    signal?.throwIfAborted();
    return this.#current(eventId);
  }

  #current(eventId: string): RatedUsageRecord | undefined {
    // A stored event's id was validated when it was stored: only an unknown id needs checking.
    const versions = this.#versions.get(eventId);
    if (versions !== undefined) return (versions[versions.length - 1] as Stored).record;
    if (!isEventId(eventId)) parseWith(EventIdSchema, eventId, "RatedRecordStore.current", "eventId");
    return undefined;
  }

  /** One stored version by its ratedRecordId (superseded ones included), or undefined. */
  async get(ratedRecordId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(RatedRecordIdSchema, ratedRecordId, "RatedRecordStore.get", "ratedRecordId");
    return this.#stored(id)?.record;
  }

  async listSince(
    cursor: string | undefined,
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ items: ChangeLogEntry[]; cursor: string | undefined }> {
    signal?.throwIfAborted();
    const start = cursor === undefined ? 0 : this.#position(cursor, "RatedRecordStore.listSince");
    const max = parseWith(LimitSchema, limit, "RatedRecordStore.listSince", "limit");
    const end = Math.min(this.#log.length, start + max);
    if (end === start) return { items: [], cursor };
    const items: ChangeLogEntry[] = [];
    for (let i = start; i < end; i++)
      items.push({ seq: String(i + 1), record: this.#log[i] as RatedUsageRecord });
    return { items, cursor: String(end) };
  }

  async summary(query: SummaryQuery, signal?: AbortSignal): Promise<SummaryRow[]> {
    signal?.throwIfAborted();
    return summarize(this.#currentRecords(), query);
  }

  async lines(query: LinesQuery, signal?: AbortSignal): Promise<LinesPage> {
    signal?.throwIfAborted();
    return selectLines(this.#currentRecords(), query);
  }

  async getCursor(name: string, signal?: AbortSignal): Promise<string | undefined> {
    signal?.throwIfAborted();
    const position = this.#cursors.get(
      parseWith(ConsumerNameSchema, name, "RatedRecordStore.getCursor", "name"),
    );
    return position === undefined ? undefined : String(position);
  }

  async saveCursor(name: string, cursor: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const consumer = parseWith(ConsumerNameSchema, name, "RatedRecordStore.saveCursor", "name");
    const position = this.#position(cursor, "RatedRecordStore.saveCursor");
    // Forward only: a late, stale save (an older cursor) must not rewind the consumer.
    if (position > (this.#cursors.get(consumer) ?? -1)) this.#cursors.set(consumer, position);
  }

  /**
   * The consumer's cursor and how many versions follow it. Every stored version is handed out
   * at once (there are no open transactions), so `waiting` is 0 and nothing is held back.
   */
  async changeLogStatus(query?: ChangeLogStatusQuery, signal?: AbortSignal): Promise<ChangeLogStatus> {
    signal?.throwIfAborted();
    const { consumer, countLimit } = parseChangeLogStatusQuery(query);
    const position = consumer === undefined ? undefined : this.#cursors.get(consumer);
    const after = this.#log.length - (position ?? 0);
    return {
      ...(consumer === undefined ? {} : { consumer }),
      cursor: position === undefined ? undefined : String(position),
      ready: Math.min(after, countLimit),
      waiting: 0,
      capped: after > countLimit,
    };
  }

  /** A cursor's position in the log, validated: a decimal integer no greater than the log's length. */
  #position(cursor: unknown, subject: string): number {
    const position = Number(parseWith(CursorSchema, cursor, subject, "cursor"));
    if (position > this.#log.length) {
      throw LatchValidationError.at(subject, "cursor", "is past the end of this store's change log");
    }
    return position;
  }

  #duplicate(existing: Stored, incoming: Stored): PutResult {
    if (existing.record === incoming.record) return "already_exists"; // the same frozen record
    const existingHash = hashOf(existing);
    const incomingHash = hashOf(incoming);
    if (existingHash !== incomingHash) {
      throw new IdempotencyConflictError({ id: incoming.record.ratedRecordId, existingHash, incomingHash });
    }
    return "already_exists";
  }

  #insert(stored: Stored): void {
    const { record } = stored;
    // Versions chain one by one, so the version being inserted is always the next one.
    const versions = this.#versions.get(record.eventId);
    if (versions === undefined) this.#versions.set(record.eventId, [stored]);
    else versions.push(stored);
    this.#log.push(record);
  }

  /** The current version of each event, in the order the events were first stored. */
  *#currentRecords(): IterableIterator<RatedUsageRecord> {
    for (const versions of this.#versions.values()) yield (versions[versions.length - 1] as Stored).record;
  }

  static {
    const { put, current } = MemoryRatedRecordStore.prototype;
    inlineStore = (store) =>
      typeof store === "object" &&
      store !== null &&
      #versions in store &&
      store.put === put &&
      store.current === current
        ? store
        : undefined;
    putNow = (store, record) => store.#put(record);
    // The id of a parsed observation is valid: an unknown one needs no check (see `#current`).
    currentNow = (store, eventId) => {
      const versions = store.#versions.get(eventId);
      return versions === undefined ? undefined : (versions[versions.length - 1] as Stored).record;
    };
  }
}

/**
 * `store` itself when it is a `MemoryRatedRecordStore` (not a Proxy of one) whose `put` and
 * `current` are the class's own (not overridden by a subclass, nor replaced on the instance),
 * so that {@link putInline} and {@link currentInline} do exactly what they would; `undefined`
 * otherwise. For the facade's inline record path; not exported from the package.
 */
export function inlineRatedStore(store: unknown): MemoryRatedRecordStore | undefined {
  return inlineStore(store);
}

/** `store.put(record)`, synchronously: the answer, or the error thrown (no promise). */
export function putInline(store: MemoryRatedRecordStore, record: RatedUsageRecord): PutResult {
  return putNow(store, record);
}

/**
 * `store.current(eventId)`, synchronously (no promise), for the eventId of a parsed
 * observation: valid already, so it is not checked again.
 */
export function currentInline(store: MemoryRatedRecordStore, eventId: string): RatedUsageRecord | undefined {
  return currentNow(store, eventId);
}
