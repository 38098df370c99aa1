import type { ApiKeyPage, ApiKeyStore, StoredApiKey } from "../api-keys/contract.js";
import { ownerWithin } from "../api-keys/contract.js";
import {
  ApiKeyDigestSchema,
  ApiKeyIdSchema,
  ApiKeyInstantSchema,
  type ApiKeyListOptions,
  ApiKeyListOptionsSchema,
  type ApiKeyRecord,
  ApiKeyRecordSchema,
  IntervalMsSchema,
} from "../api-keys/schemas.js";
import { canonicalHash } from "../contracts/hashing.js";
import { IdempotencyConflictError } from "../errors/index.js";
import { type BillingSubject, BillingSubjectSchema } from "../schemas/identity.js";
import { parseWith } from "../schemas/parse.js";

interface Entry {
  record: ApiKeyRecord;
  digest: string;
  /** Hash of the inserted record and digest, for retry-vs-conflict. */
  hash: string;
}

const S = "ApiKeyStore";

function copy(record: ApiKeyRecord): ApiKeyRecord {
  return structuredClone(record);
}

/**
 * The embedded {@link ApiKeyStore}: keys in process memory, by id and by digest, with the
 * contract's semantics. Every method is a synchronous critical section behind an async
 * signature, so concurrent `touch`es of one key write once per interval, and a key minted
 * while its minter is being revoked is revoked too.
 *
 * @example
 * const keys = new ApiKeys({ store: new MemoryApiKeyStore(), secret });
 */
export class MemoryApiKeyStore implements ApiKeyStore {
  readonly #byId = new Map<string, Entry>();
  readonly #byDigest = new Map<string, string>();
  /** Minter id → the ids of the keys it minted (`createdBy`). */
  readonly #minted = new Map<string, Set<string>>();

  async insert(
    record: ApiKeyRecord,
    digest: string,
    signal?: AbortSignal,
  ): Promise<"created" | "already_exists"> {
    signal?.throwIfAborted();
    const r = parseWith(ApiKeyRecordSchema, record, `${S}.insert`, "record");
    const d = parseWith(ApiKeyDigestSchema, digest, `${S}.insert`, "digest");
    // The mutable fields are not part of a key's identity: a retried insert after a revoke is a retry.
    const { revokedAt: _r, lastUsedAt: _l, ...identity } = r;
    const hash = canonicalHash({ record: identity, digest: d });
    const existing = this.#byId.get(r.id);
    if (existing !== undefined) {
      if (existing.hash === hash) return "already_exists";
      throw new IdempotencyConflictError({ id: r.id, existingHash: existing.hash, incomingHash: hash });
    }
    const holder = this.#byDigest.get(d);
    if (holder !== undefined) {
      const other = this.#byId.get(holder);
      throw new IdempotencyConflictError({ id: r.id, existingHash: other?.hash ?? "", incomingHash: hash });
    }
    const stored = copy(r);
    if (r.createdBy !== undefined) {
      // A key minted by a revoked key is revoked with it (its minter's revocation time).
      const minterRevokedAt = this.#byId.get(r.createdBy)?.record.revokedAt;
      if (minterRevokedAt !== undefined) stored.revokedAt ??= minterRevokedAt;
      const siblings = this.#minted.get(r.createdBy) ?? new Set<string>();
      siblings.add(r.id);
      this.#minted.set(r.createdBy, siblings);
    }
    this.#byId.set(r.id, { record: stored, digest: d, hash });
    this.#byDigest.set(d, r.id);
    return "created";
  }

  async findByDigest(digest: string, signal?: AbortSignal): Promise<StoredApiKey | undefined> {
    signal?.throwIfAborted();
    const d = parseWith(ApiKeyDigestSchema, digest, `${S}.findByDigest`, "digest");
    const id = this.#byDigest.get(d);
    const entry = id === undefined ? undefined : this.#byId.get(id);
    return entry === undefined ? undefined : { record: copy(entry.record), digest: entry.digest };
  }

  async get(owner: BillingSubject, id: string, signal?: AbortSignal): Promise<ApiKeyRecord | undefined> {
    signal?.throwIfAborted();
    const entry = this.#within(owner, id, `${S}.get`);
    return entry === undefined ? undefined : copy(entry.record);
  }

  async list(owner: BillingSubject, options: ApiKeyListOptions, signal?: AbortSignal): Promise<ApiKeyPage> {
    signal?.throwIfAborted();
    const o = parseWith(BillingSubjectSchema, owner, `${S}.list`, "owner");
    const { limit, cursor } = parseWith(ApiKeyListOptionsSchema, options, `${S}.list`);
    const ids = [...this.#byId.keys()]
      .filter((id) => cursor === undefined || id > cursor)
      .filter((id) => ownerWithin((this.#byId.get(id) as Entry).record.owner, o))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const items = ids.slice(0, limit).map((id) => copy((this.#byId.get(id) as Entry).record));
    const last = items[items.length - 1];
    return ids.length > limit && last !== undefined ? { items, next: last.id } : { items };
  }

  async revoke(
    owner: BillingSubject,
    id: string,
    at: string,
    signal?: AbortSignal,
  ): Promise<ApiKeyRecord | undefined> {
    signal?.throwIfAborted();
    const when = parseWith(ApiKeyInstantSchema, at, `${S}.revoke`, "at");
    const entry = this.#within(owner, id, `${S}.revoke`);
    if (entry === undefined) return undefined;
    entry.record.revokedAt ??= when;
    // Every key it minted, transitively; one already revoked keeps its own time.
    const pending = [...(this.#minted.get(entry.record.id) ?? [])];
    const seen = new Set<string>();
    for (let id = pending.pop(); id !== undefined; id = pending.pop()) {
      if (seen.has(id)) continue;
      seen.add(id);
      const minted = this.#byId.get(id);
      if (minted === undefined) continue;
      minted.record.revokedAt ??= entry.record.revokedAt;
      pending.push(...(this.#minted.get(id) ?? []));
    }
    return copy(entry.record);
  }

  async touch(id: string, at: string, minIntervalMs: number, signal?: AbortSignal): Promise<boolean> {
    signal?.throwIfAborted();
    const key = parseWith(ApiKeyIdSchema, id, `${S}.touch`, "id");
    const when = parseWith(ApiKeyInstantSchema, at, `${S}.touch`, "at");
    const interval = parseWith(IntervalMsSchema, minIntervalMs, `${S}.touch`, "minIntervalMs");
    const entry = this.#byId.get(key);
    if (entry === undefined) return false;
    const last = entry.record.lastUsedAt;
    if (last !== undefined && Date.parse(when) - Date.parse(last) < interval) return false;
    entry.record.lastUsedAt = when;
    return true;
  }

  #within(owner: BillingSubject, id: string, subject: string): Entry | undefined {
    const o = parseWith(BillingSubjectSchema, owner, subject, "owner");
    const key = parseWith(ApiKeyIdSchema, id, subject, "id");
    const entry = this.#byId.get(key);
    return entry !== undefined && ownerWithin(entry.record.owner, o) ? entry : undefined;
  }
}
