import { observationHash } from "../contracts/hashing.js";
import {
  EventIdListSchema,
  ListUnpricedOptionsSchema,
  parseObservationBatch as parseBatch,
} from "../contracts/inputs.js";
import type { AppendResult, ObservationStore } from "../contracts/observation-store.js";
import { IdempotencyConflictError } from "../errors/index.js";
import { parseObservation } from "../observation/parse.js";
import { EventIdSchema, isEventId } from "../schemas/identity.js";
import type { UsageObservation } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";

interface Stored {
  /** Parsed and deep-frozen: neither the caller's object nor a reader can change it. */
  readonly observation: UsageObservation;
  /**
   * Its idempotency hash, computed when first needed: only a second append of its eventId
   * compares hashes, and the observation is frozen, so a hash computed late is the same.
   */
  hash: string | undefined;
}

function hashOf(stored: Stored): string {
  if (stored.hash === undefined) stored.hash = observationHash(stored.observation);
  return stored.hash;
}

/** Index of the first element of sorted `ids` that is greater than `after` (code-unit order). */
function firstAfter(ids: readonly string[], after: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index where `id` is or would be inserted in sorted `ids`. */
function lowerBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((ids[mid] as string) < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

// Set by the class's static block (which alone can reach its private members); see the functions below it.
let inlineStore: (store: unknown) => MemoryObservationStore | undefined;
let appendParsed: (store: MemoryObservationStore, parsed: UsageObservation) => AppendResult;
let markOnePriced: (store: MemoryObservationStore, eventId: string) => void;

/**
 * The embedded {@link ObservationStore}: everything in process memory, with exactly the
 * guarantees of the contract (and of every real backend), not weaker ones:
 * idempotent appends compared by canonical hash, all-or-nothing batches, unpriced
 * observations listed in eventId order (JavaScript code-unit order) each exactly once.
 *
 * Every method runs its read-check-write without an `await`, so interleaved async callers
 * cannot race. Stored observations are validated copies, deep-frozen; what `get` returns is
 * frozen too. An observation `parseObservation` returned is such a copy already and is kept as
 * is; its hash is computed only when a second append of the same eventId needs it.
 *
 * @example
 * const store = new MemoryObservationStore();
 * await store.append(observation);        // "appended"
 * await store.append(observation);        // "already_exists"
 * const { items } = await store.listUnpriced({ limit: 100 });
 */
export class MemoryObservationStore implements ObservationStore {
  readonly #byId = new Map<string, Stored>();
  /** Event ids not yet marked priced, sorted in code-unit order. */
  readonly #unpriced: string[] = [];

  async append(observation: UsageObservation, signal?: AbortSignal): Promise<AppendResult> {
    signal?.throwIfAborted();
    return this.#append(parseObservation(observation));
  }

  #append(parsed: UsageObservation): AppendResult {
    const existing = this.#byId.get(parsed.eventId);
    if (existing !== undefined) return this.#duplicate(existing, parsed);
    this.#insert({ observation: parsed, hash: undefined });
    return "appended";
  }

  async appendMany(observations: readonly UsageObservation[], signal?: AbortSignal): Promise<AppendResult[]> {
    signal?.throwIfAborted();
    const parsed = parseBatch(observations);
    // Decide every result first, writing nothing: a conflict anywhere leaves the store untouched.
    const incoming = new Map<string, Stored>();
    const results: AppendResult[] = [];
    const toInsert: Stored[] = [];
    for (const observation of parsed) {
      const known = this.#byId.get(observation.eventId) ?? incoming.get(observation.eventId);
      if (known !== undefined) {
        results.push(this.#duplicate(known, observation));
        continue;
      }
      const stored: Stored = { observation, hash: undefined };
      incoming.set(observation.eventId, stored);
      toInsert.push(stored);
      results.push("appended");
    }
    for (const stored of toInsert) this.#insert(stored);
    return results;
  }

  async get(eventId: string, signal?: AbortSignal): Promise<UsageObservation | undefined> {
    signal?.throwIfAborted();
    // A stored event's id was validated on append: only an unknown id needs checking.
    const stored = this.#byId.get(eventId);
    if (stored !== undefined) return stored.observation;
    if (!isEventId(eventId)) parseWith(EventIdSchema, eventId, "ObservationStore.get", "eventId");
    return undefined;
  }

  async listUnpriced(
    options: { after?: string; limit: number },
    signal?: AbortSignal,
  ): Promise<{ items: UsageObservation[]; next?: string }> {
    signal?.throwIfAborted();
    const { after, limit } = parseWith(ListUnpricedOptionsSchema, options, "ObservationStore.listUnpriced");
    const start = after === undefined ? 0 : firstAfter(this.#unpriced, after);
    const ids = this.#unpriced.slice(start, start + limit);
    const items = ids.map((id) => (this.#byId.get(id) as Stored).observation);
    const last = ids[ids.length - 1];
    return last !== undefined && start + limit < this.#unpriced.length ? { items, next: last } : { items };
  }

  async markPriced(eventIds: readonly string[], signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    // Ids of stored events were validated on append: the list is parsed only when one is not.
    const ids = this.#allStored(eventIds)
      ? eventIds
      : parseWith(EventIdListSchema, eventIds, "ObservationStore.markPriced", "eventIds");
    for (const id of ids) this.#markPriced(id);
  }

  #markPriced(id: string): void {
    const unpriced = this.#unpriced;
    const at = lowerBound(unpriced, id);
    if (unpriced[at] !== id) return;
    // The last one (a call priced as soon as it was stored) is popped: no splice, no array for its result.
    if (at === unpriced.length - 1) unpriced.pop();
    else unpriced.splice(at, 1);
  }

  #allStored(eventIds: unknown): eventIds is readonly string[] {
    if (!Array.isArray(eventIds)) return false;
    for (const id of eventIds) if (typeof id !== "string" || !this.#byId.has(id)) return false;
    return true;
  }

  #duplicate(existing: Stored, incoming: UsageObservation): AppendResult {
    if (existing.observation === incoming) return "already_exists"; // the same frozen observation
    const existingHash = hashOf(existing);
    const incomingHash = observationHash(incoming);
    if (existingHash !== incomingHash) {
      throw new IdempotencyConflictError({ id: incoming.eventId, existingHash, incomingHash });
    }
    return "already_exists";
  }

  #insert(stored: Stored): void {
    const { observation } = stored;
    this.#byId.set(observation.eventId, stored);
    const unpriced = this.#unpriced;
    const at = lowerBound(unpriced, observation.eventId);
    if (at === unpriced.length) unpriced.push(observation.eventId);
    else unpriced.splice(at, 0, observation.eventId);
  }

  static {
    const { append, markPriced } = MemoryObservationStore.prototype;
    inlineStore = (store) =>
      typeof store === "object" &&
      store !== null &&
      #byId in store &&
      store.append === append &&
      store.markPriced === markPriced
        ? store
        : undefined;
    appendParsed = (store, parsed) => store.#append(parsed);
    markOnePriced = (store, eventId) => store.#markPriced(eventId);
  }
}

/**
 * `store` itself when it is a `MemoryObservationStore` (not a Proxy of one) whose `append` and
 * `markPriced` are the class's own (not overridden by a subclass, nor replaced on the
 * instance), so that {@link appendInline} and {@link markPricedInline} do exactly what they
 * would; `undefined` otherwise, and the caller goes through the async methods (which a wrapper
 * may have replaced). For the facade's inline record path; not exported from the package.
 */
export function inlineObservationStore(store: unknown): MemoryObservationStore | undefined {
  return inlineStore(store);
}

/** `store.append(observation)`, synchronously: the answer, or the error thrown (no promise). */
export function appendInline(store: MemoryObservationStore, observation: UsageObservation): AppendResult {
  return appendParsed(store, parseObservation(observation));
}

/** `store.markPriced([eventId])` for a stored event's id, synchronously (no promise). */
export function markPricedInline(store: MemoryObservationStore, eventId: string): void {
  markOnePriced(store, eventId);
}
