import { parseObservation, type UsageObservation } from "@latch/core";
import {
  EventIdListSchema,
  EventIdSchema,
  ListUnpricedOptionsSchema,
  type ObservationStore,
  observationHash,
  parseObservationBatch as parseBatch,
  parseWith,
} from "@latch/core/adapter";
import { CorruptRecordError, IdempotencyConflictError } from "@latch/core/errors";
import { type RedisClient, withTimeout } from "./client.js";
import { KeySpace } from "./keys.js";
import type { LuaScripts } from "./lua/generated.js";
import { isFailure, scriptError } from "./script-errors.js";
import { defineScripts, replyInteger, replyString } from "./scripts.js";

export interface RedisStoreOptions {
  /** Prefix of every key (no `{` or `}`). Default `latch`. */
  keyPrefix?: string;
  /** Upper bound on one call; past it the call rejects. Default 5,000 ms. */
  timeoutMs?: number;
}

/**
 * {@link ObservationStore} on Redis or Redis Cluster. A batch is one Lua script, so appends
 * are all-or-nothing and idempotent by canonical hash; unpriced eventIds sit in a sorted set
 * read in lexicographic order (byte order of UTF-8, which equals JavaScript's code-unit order
 * for every eventId without characters above U+FFFF). The whole store lives in one hash slot:
 * it runs on a Cluster but does not spread over it. Redis is a fast buffer here, not the
 * record: see the README's durability note.
 *
 * @example
 * const store = new RedisObservationStore(redis, { keyPrefix: "myapp" });
 * await store.append(observation); // "appended"
 */
export class RedisObservationStore implements ObservationStore {
  readonly #client: RedisClient;
  readonly #scripts: LuaScripts;
  readonly #keys: ReturnType<KeySpace["observationKeys"]>;
  readonly #timeoutMs: number;

  constructor(client: RedisClient, options: RedisStoreOptions = {}) {
    this.#client = client;
    this.#keys = new KeySpace(options.keyPrefix ?? "latch").observationKeys();
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#scripts = defineScripts(client);
  }

  async append(observation: UsageObservation, signal?: AbortSignal): Promise<"appended" | "already_exists"> {
    signal?.throwIfAborted();
    const [result] = await this.#appendParsed([parseObservation(observation)]);
    return result as "appended" | "already_exists";
  }

  async appendMany(
    observations: readonly UsageObservation[],
    signal?: AbortSignal,
  ): Promise<Array<"appended" | "already_exists">> {
    signal?.throwIfAborted();
    const parsed = parseBatch(observations);
    if (parsed.length === 0) return [];
    return this.#appendParsed(parsed);
  }

  async get(eventId: string, signal?: AbortSignal): Promise<UsageObservation | undefined> {
    signal?.throwIfAborted();
    const id = parseWith(EventIdSchema, eventId, "ObservationStore.get", "eventId");
    const json = await withTimeout(this.#client.hget(this.#keys.data, id), this.#timeoutMs);
    return json === null ? undefined : decode(id, json);
  }

  async listUnpriced(
    options: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ items: UsageObservation[]; next?: string }> {
    signal?.throwIfAborted();
    const { after, limit } = parseWith(ListUnpricedOptionsSchema, options, "ObservationStore.listUnpriced");
    const from = after === undefined ? "-" : `(${after}`;
    // One extra id tells whether more remain.
    const ids = await withTimeout(
      this.#client.zrangebylex(this.#keys.unpriced, from, "+", "LIMIT", 0, limit + 1),
      this.#timeoutMs,
    );
    const page = ids.slice(0, limit);
    if (page.length === 0) return { items: [] };
    const jsons = await withTimeout(this.#client.hmget(this.#keys.data, ...page), this.#timeoutMs);
    const items = page.map((id, i) => {
      const json = jsons[i];
      if (json === null || json === undefined) {
        throw new CorruptRecordError({ id, reason: "listed as unpriced but not stored" });
      }
      return decode(id, json);
    });
    const last = page[page.length - 1] as string;
    return ids.length > limit ? { items, next: last } : { items };
  }

  async markPriced(eventIds: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const ids = parseWith(EventIdListSchema, eventIds, "ObservationStore.markPriced", "eventIds");
    if (ids.length === 0) return;
    await withTimeout(this.#client.zrem(this.#keys.unpriced, ...ids), this.#timeoutMs);
  }

  async #appendParsed(parsed: UsageObservation[]): Promise<Array<"appended" | "already_exists">> {
    const items = parsed.map((o) => ({
      eventId: o.eventId,
      hash: observationHash(o),
      observation: JSON.stringify(o),
    }));
    const { data, hashes, unpriced } = this.#keys;
    const reply = await withTimeout(
      this.#scripts.appendMany({ observations: data, hashes, unpriced }, { items }),
      this.#timeoutMs,
    );
    if (isFailure(reply)) {
      throw scriptError("appendMany", reply, {
        subject: "ObservationStore.appendMany",
        id: "appendMany",
        conflict: (conflict) => {
          const item = items[replyInteger(conflict[1], "appendMany.index") - 1];
          if (item === undefined)
            throw new CorruptRecordError({
              id: "appendMany",
              reason: "the script named an item the batch does not have",
            });
          return new IdempotencyConflictError({
            id: item.eventId,
            existingHash: replyString(conflict[2], "appendMany.storedHash"),
            incomingHash: item.hash,
          });
        },
      });
    }
    return reply.map((r) => (replyInteger(r, "appendMany.result") === 1 ? "appended" : "already_exists"));
  }
}

function decode(eventId: string, json: string): UsageObservation {
  try {
    return parseObservation(JSON.parse(json));
  } catch (cause) {
    throw new CorruptRecordError({ id: eventId, reason: "stored observation does not parse", cause });
  }
}
