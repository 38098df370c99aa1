/**
 * Digests recently looked up and not found: a bounded, short-lived negative cache, so a key
 * presented again and again (a retry loop with a stale or made-up key) costs one store lookup
 * per `ttlMs`, not one per request.
 *
 * Why a cached miss cannot hide a real key: `ApiKeys.create` forgets the new key's digest
 * here before the key is usable; another process can only have cached the digest of a key
 * it has never issued by being presented that exact key before it existed (guessing ~190
 * random bits), and even then only for `ttlMs`.
 */
export class AbsentDigests {
  /** Digest → expiry (epoch ms). A Map iterates in insertion order: the first entry is the oldest. */
  readonly #entries = new Map<string, number>();
  readonly #capacity: number;
  readonly #ttlMs: number;

  constructor(capacity: number, ttlMs: number) {
    this.#capacity = capacity;
    this.#ttlMs = ttlMs;
  }

  /** True when `digest` was recorded absent less than `ttlMs` ago. */
  has(digest: string, now: number): boolean {
    const until = this.#entries.get(digest);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#entries.delete(digest);
    return false;
  }

  /** Records `digest` as absent; the oldest entry goes when the cache is full. */
  add(digest: string, now: number): void {
    if (this.#capacity === 0) return;
    this.#entries.delete(digest);
    while (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(digest, now + this.#ttlMs);
  }

  /** Forgets `digest` (a key with this digest now exists). */
  delete(digest: string): void {
    this.#entries.delete(digest);
  }

  get size(): number {
    return this.#entries.size;
  }
}
