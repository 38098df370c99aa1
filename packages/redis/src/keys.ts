import { LatchValidationError } from "@latch/core";

const NEEDS_ESCAPE = /[%{}]/;

/**
 * Escapes the characters that would make two keys collide or move a hash tag: `{` and `}`
 * (so the first `}` of a key always closes its tag) and `%` (so the escape is reversible).
 */
function escapePart(part: string): string {
  if (!NEEDS_ESCAPE.test(part)) return part; // the common case: nothing to escape
  return part.replaceAll("%", "%25").replaceAll("{", "%7B").replaceAll("}", "%7D");
}

/** The keys of one quota account. All share the `{account}` hash tag: one Cluster slot. */
export interface AccountKeys {
  /**
   * Hash: `limit`, `spent`, `held` (integer strings), `due` (ms: no hold expires before it);
   * with `allowEvictingPolicy`, settled markers `settled:<holdId>` (a resolved hold's record).
   */
  account: string;
  /** Sorted set: active holds as `<amount>|<holdId>`, scored by expiresAt (ms, Redis server clock). */
  expiry: string;
  /**
   * Sorted set: holdIds of resolved holds scored by resolution time (ms), the purge order of the
   * settled markers kept in the account's hash (`settled:<holdId>`). Used only with
   * `allowEvictingPolicy` (see the README).
   */
  settled: string;
}

/** Keys of the observation store (one hash slot). */
export interface ObservationKeys {
  /** Hash: eventId → observation JSON. */
  data: string;
  /** Hash: eventId → canonical hash of the payload. */
  hashes: string;
  /** Sorted set (scores 0, lexicographic): eventIds not yet marked priced. */
  unpriced: string;
}

/** Keys of the rated-record store (one hash slot). */
export interface RatedKeys {
  /** Hash: ratedRecordId → record JSON. */
  records: string;
  /** Hash: ratedRecordId → canonical hash (without `ratedAt`). */
  hashes: string;
  /** Hash: eventId → highest stored version. */
  current: string;
  /** Sorted set: ratedRecordId scored by its change-log seq. */
  log: string;
  /** String: the last seq handed out. */
  seq: string;
  /** Sorted set (scores 0): `<tenantId>\0<eventId>`, so reports filtered by tenant read only that tenant. */
  tenants: string;
  /** Hash: consumer name → saved cursor. */
  cursors: string;
}

/**
 * Key layout of `@latch/redis` (see the README). Every key that one script touches carries
 * the same `{hash tag}` (the account, or the counter key), and every key is passed in KEYS,
 * so each script runs on one Redis Cluster slot.
 */
export class KeySpace {
  readonly prefix: string;

  constructor(prefix: string) {
    if (prefix.length === 0 || prefix.includes("{") || prefix.includes("}")) {
      throw LatchValidationError.at("Redis options", "keyPrefix", "must be non-empty and contain no { or }");
    }
    this.prefix = prefix;
  }

  accountKeys(account: string): AccountKeys {
    const base = `${this.prefix}:quota:{${escapePart(account)}}`;
    return { account: `${base}:account`, expiry: `${base}:holds`, settled: `${base}:settled` };
  }

  /**
   * String, with a TTL: a hold's record `<state>|<amount>|<actual>|<account>` on a
   * **standalone** server, one key per holdId whatever the account, so the record also tells
   * which account holds the holdId (no separate locator). Tagged by the holdId.
   */
  hold(holdId: string): string {
    return `${this.prefix}:hold:{${escapePart(holdId)}}`;
  }

  /**
   * String, with a TTL: a hold's record `<state>|<amount>|<actual>|<account>` on a **Cluster**,
   * one key per account and holdId, in the account's slot (beside the holdId's locator).
   */
  holdRecord(account: string, holdId: string): string {
    return `${this.prefix}:quota:{${escapePart(account)}}:hold:${escapePart(holdId)}`;
  }

  /**
   * String: the account a holdId belongs to on a **Cluster**, so `commit(holdId)` and
   * `void(holdId)` find the account's slot. Tagged by the holdId (its own slot), claimed beside
   * the reserve script.
   */
  holdLocator(holdId: string): string {
    return `${this.prefix}:holdref:{${escapePart(holdId)}}`;
  }

  /**
   * The keys of the observation store. One store lives in one hash slot (tag
   * `{<prefix>:observations}`): it runs on Redis Cluster, but does not shard.
   */
  observationKeys(): ObservationKeys {
    const base = `${this.prefix}:{${this.prefix}:observations}`;
    return { data: `${base}:data`, hashes: `${base}:hashes`, unpriced: `${base}:unpriced` };
  }

  /** The keys of the rated-record store, all in one hash slot (tag `{<prefix>:rated}`). */
  ratedKeys(): RatedKeys {
    const base = `${this.prefix}:{${this.prefix}:rated}`;
    return {
      records: `${base}:records`,
      hashes: `${base}:hashes`,
      current: `${base}:current`,
      log: `${base}:log`,
      seq: `${base}:seq`,
      tenants: `${base}:tenants`,
      cursors: `${base}:cursors`,
    };
  }

  /** Hash: period → total of one usage counter key. */
  counter(key: string): string {
    return `${this.prefix}:usage:{${escapePart(key)}}`;
  }

  /**
   * Hash, with a TTL: the operations (opId → `<quantity>|<previous>`) of one usage counter key
   * and period. Same hash tag as {@link counter}, so one script touches both.
   */
  counterOps(key: string, period: string): string {
    return `${this.prefix}:usage:{${escapePart(key)}}:ops:${escapePart(period)}`;
  }
}
