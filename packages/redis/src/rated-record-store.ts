import {
  LatchValidationError,
  type LinesPage,
  type LinesQuery,
  type RatedUsageRecord,
  type SummaryQuery,
  type SummaryRow,
  summarize,
} from "@latch/core";
import {
  type ChangeLogEntry,
  type ChangeLogStatus,
  type ChangeLogStatusQuery,
  ConsumerNameSchema,
  checkVersionShape,
  EventIdSchema,
  ChangeLogLimitSchema as LimitSchema,
  type PutResult,
  parseChangeLogStatusQuery,
  parseWith,
  RatedRecordIdSchema,
  type RatedRecordStore,
  RatedUsageRecordSchema,
  ratedRecordHash,
  selectLines,
} from "@latch/core/adapter";
import { CorruptRecordError, IdempotencyConflictError } from "@latch/core/errors";
import { z } from "zod";
import { type RedisClient, withTimeout } from "./client.js";
import { KeySpace, type RatedKeys } from "./keys.js";
import type { LuaScripts } from "./lua/generated.js";
import type { RedisStoreOptions } from "./observation-store.js";
import { isFailure, scriptError } from "./script-errors.js";
import { defineScripts, replyInteger, replyString } from "./scripts.js";

const CursorSchema = z
  .string({ error: "expected a decimal integer string" })
  .regex(/^(0|[1-9][0-9]{0,15})$/, { error: "expected a decimal integer string" });

/** Parsed records by ratedRecordId: a stored version never changes, so it is parsed once. */
const CACHE_LIMIT = 50_000;

interface Incoming {
  record: RatedUsageRecord;
  hash: string;
}

function tenantMember(tenantId: string, eventId: string): string {
  return `${tenantId}\u0000${eventId}`;
}

/**
 * {@link RatedRecordStore} on Redis or Redis Cluster. A batch is one Lua script: idempotent
 * by canonical hash (ignoring `ratedAt`), corrections chained and kept in their event's
 * currency (`CurrencyMismatchError`), all or nothing. Each new
 * version gets the next change-log seq inside that script; scripts run one at a time, so
 * `listSince` never skips a version that a slower writer commits later (there are no open
 * transactions to wait behind) and hands each out exactly once.
 *
 * Reports load the current version of every matching event and run core's reference
 * `summarize` / `selectLines` over them (a tenant filter reads only that tenant's events; a
 * report without one reads the whole store). That is exact, and fine for hot or recent data;
 * for large history, report from `@latch/postgres`. The store lives in one hash slot.
 *
 * @example
 * const store = new RedisRatedRecordStore(redis, { keyPrefix: "myapp" });
 * await store.put(record);
 * const { items, cursor } = await store.listSince(undefined, 100);
 */
export class RedisRatedRecordStore implements RatedRecordStore {
  readonly #client: RedisClient;
  readonly #scripts: LuaScripts;
  readonly #keys: RatedKeys;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, RatedUsageRecord>();

  constructor(client: RedisClient, options: RedisStoreOptions = {}) {
    this.#client = client;
    this.#keys = new KeySpace(options.keyPrefix ?? "latch").ratedKeys();
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#scripts = defineScripts(client);
  }

  async put(record: RatedUsageRecord, signal?: AbortSignal): Promise<PutResult> {
    signal?.throwIfAborted();
    const [result] = await this.#putParsed([parseRecord(record, "")], "");
    return result as PutResult;
  }

  async putMany(records: readonly RatedUsageRecord[], signal?: AbortSignal): Promise<PutResult[]> {
    signal?.throwIfAborted();
    if (!Array.isArray(records)) {
      throw LatchValidationError.at("RatedUsageRecord[]", "", "expected an array of records");
    }
    const parsed = records.map((record: unknown, index) => parseRecord(record, String(index)));
    if (parsed.length === 0) return [];
    return this.#putParsed(parsed, "batch");
  }

  async current(eventId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(EventIdSchema, eventId, "RatedRecordStore.current", "eventId");
    const version = await this.#timed(this.#client.hget(this.#keys.current, id));
    if (version === null) return undefined;
    return this.#load(`${id}:v${version}`);
  }

  async get(ratedRecordId: string, signal?: AbortSignal): Promise<RatedUsageRecord | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(RatedRecordIdSchema, ratedRecordId, "RatedRecordStore.get", "ratedRecordId");
    return this.#load(id);
  }

  async listSince(
    cursor: string | undefined,
    limit: number,
    signal?: AbortSignal,
  ): Promise<{ items: ChangeLogEntry[]; cursor: string | undefined }> {
    signal?.throwIfAborted();
    const subject = "RatedRecordStore.listSince";
    const start = cursor === undefined ? "0" : parseWith(CursorSchema, cursor, subject, "cursor");
    const max = parseWith(LimitSchema, limit, subject, "limit");
    if (cursor !== undefined) await this.#checkNotPastEnd(start, subject);
    const reply = await this.#timed(
      this.#client.zrangebyscore(this.#keys.log, `(${start}`, "+inf", "WITHSCORES", "LIMIT", 0, max),
    );
    if (reply.length === 0) return { items: [], cursor };
    const ids: string[] = [];
    const seqs: string[] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) {
      ids.push(reply[i] as string);
      seqs.push(String(replyInteger(reply[i + 1], "log.seq")));
    }
    const records = await this.#loadMany(ids);
    const items = ids.map((id, i) => {
      const record = records[i];
      if (record === undefined)
        throw new CorruptRecordError({ id, reason: "in the change log but not stored" });
      return { seq: seqs[i] as string, record };
    });
    return { items, cursor: seqs[seqs.length - 1] };
  }

  async summary(query: SummaryQuery, signal?: AbortSignal): Promise<SummaryRow[]> {
    signal?.throwIfAborted();
    return summarize(await this.#currentMatching(query.filters?.tenantId), query);
  }

  async lines(query: LinesQuery, signal?: AbortSignal): Promise<LinesPage> {
    signal?.throwIfAborted();
    return selectLines(await this.#currentMatching(query.filters?.tenantId), query);
  }

  async getCursor(name: string, signal?: AbortSignal): Promise<string | undefined> {
    signal?.throwIfAborted();
    const consumer = parseWith(ConsumerNameSchema, name, "RatedRecordStore.getCursor", "name");
    const saved = await this.#timed(this.#client.hget(this.#keys.cursors, consumer));
    return saved ?? undefined;
  }

  async saveCursor(name: string, cursor: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const subject = "RatedRecordStore.saveCursor";
    const consumer = parseWith(ConsumerNameSchema, name, subject, "name");
    const position = parseWith(CursorSchema, cursor, subject, "cursor");
    const reply = await this.#timed(this.#scripts.saveCursor(this.#keys, { consumer, cursor: position }));
    if (isFailure(reply)) throw scriptError("saveCursor", reply, { subject, id: consumer });
  }

  /**
   * The consumer's cursor and how many versions follow it (`ZCOUNT` of the log after it). A
   * version gets its seq inside the script that stores it, so every stored version is handed
   * out at once: `waiting` is 0 and nothing is held back.
   */
  async changeLogStatus(query?: ChangeLogStatusQuery, signal?: AbortSignal): Promise<ChangeLogStatus> {
    signal?.throwIfAborted();
    const { consumer, countLimit } = parseChangeLogStatusQuery(query);
    const cursor =
      consumer === undefined
        ? undefined
        : ((await this.#timed(this.#client.hget(this.#keys.cursors, consumer))) ?? undefined);
    const after = await this.#timed(this.#client.zcount(this.#keys.log, `(${cursor ?? "0"}`, "+inf"));
    return {
      ...(consumer === undefined ? {} : { consumer }),
      cursor,
      ready: Math.min(after, countLimit),
      waiting: 0,
      capped: after > countLimit,
    };
  }

  #timed<T>(work: Promise<T>): Promise<T> {
    return withTimeout(work, this.#timeoutMs);
  }

  async #checkNotPastEnd(position: string, subject: string): Promise<void> {
    const last = await this.#timed(this.#client.get(this.#keys.seq));
    if (BigInt(position) > BigInt(last ?? "0")) {
      throw LatchValidationError.at(subject, "cursor", "is past the end of this store's change log");
    }
  }

  async #putParsed(parsed: Incoming[], mode: "" | "batch"): Promise<PutResult[]> {
    const items = parsed.map(({ record, hash }, index) => {
      checkVersionShape(record, mode === "batch" ? String(index) : "");
      return {
        ratedRecordId: record.ratedRecordId,
        hash,
        record: JSON.stringify(record),
        eventId: record.eventId,
        version: String(record.version),
        supersedes: record.supersedes ?? "",
        tenantMember: tenantMember(record.observation.subject.tenantId, record.eventId),
        currency: record.currency,
      };
    });
    // RatedKeys names the keys as putMany-6.lua's header does.
    const reply = await this.#timed(this.#scripts.putMany(this.#keys, { items }));
    if (isFailure(reply)) {
      const item = (index: number) => {
        const incoming = parsed[index];
        return incoming === undefined
          ? undefined
          : { record: incoming.record, prefix: mode === "batch" ? String(index) : "", hash: incoming.hash };
      };
      throw scriptError("putMany", reply, {
        subject: "RatedUsageRecord",
        id: "putMany",
        item,
        conflict: (conflict) => {
          const incoming = item(replyInteger(conflict[1], "putMany.index") - 1);
          if (incoming === undefined) {
            throw new CorruptRecordError({
              id: "putMany",
              reason: "the script named an item the batch does not have",
            });
          }
          return new IdempotencyConflictError({
            id: incoming.record.ratedRecordId,
            existingHash: replyString(conflict[2], "putMany.storedHash"),
            incomingHash: incoming.hash,
          });
        },
      });
    }
    return reply.map((r) => (replyInteger(r, "putMany.result") === 1 ? "stored" : "already_exists"));
  }

  /** The current version of every event of `tenantId` (of every event when undefined). */
  async #currentMatching(tenantId: string | undefined): Promise<RatedUsageRecord[]> {
    let eventIds: string[];
    if (tenantId === undefined) {
      eventIds = await this.#timed(this.#client.hkeys(this.#keys.current));
    } else {
      const members = await this.#timed(
        this.#client.zrangebylex(this.#keys.tenants, `[${tenantId}\u0000`, `(${tenantId}\u0001`),
      );
      eventIds = members.map((m) => m.slice(tenantId.length + 1));
    }
    const records: RatedUsageRecord[] = [];
    for (let i = 0; i < eventIds.length; i += 1_000) {
      const chunk = eventIds.slice(i, i + 1_000);
      const versions = await this.#timed(this.#client.hmget(this.#keys.current, ...chunk));
      const ids = chunk.map((eventId, j) => `${eventId}:v${versions[j] ?? "1"}`);
      for (const record of await this.#loadMany(ids)) if (record !== undefined) records.push(record);
    }
    return records;
  }

  async #load(ratedRecordId: string): Promise<RatedUsageRecord | undefined> {
    const [record] = await this.#loadMany([ratedRecordId]);
    return record;
  }

  async #loadMany(ids: readonly string[]): Promise<Array<RatedUsageRecord | undefined>> {
    const missing = ids.filter((id) => !this.#cache.has(id));
    if (missing.length > 0) {
      const jsons = await this.#timed(this.#client.hmget(this.#keys.records, ...missing));
      missing.forEach((id, i) => {
        const json = jsons[i];
        if (json === null || json === undefined) return;
        if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
        this.#cache.set(id, decode(id, json));
      });
    }
    return ids.map((id) => this.#cache.get(id));
  }
}

function parseRecord(input: unknown, prefix: string): Incoming {
  const record = deepFreeze(parseWith(RatedUsageRecordSchema, input, "RatedUsageRecord", prefix));
  return { record, hash: ratedRecordHash(record) };
}

function decode(id: string, json: string): RatedUsageRecord {
  const parsed = RatedUsageRecordSchema.safeParse(safeJson(json));
  if (!parsed.success) {
    throw new CorruptRecordError({ id, reason: "stored record does not parse", cause: parsed.error });
  }
  return deepFreeze(parsed.data);
}

function safeJson(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
