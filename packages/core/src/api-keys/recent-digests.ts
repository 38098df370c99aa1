/**
 * A bounded set of key digests, each remembered for `ttlMs`; the oldest goes first when full.
 * `ApiKeys` keeps two:
 *
 * - digests looked up and not found (the negative cache), so a key presented again and again
 *   (a retry loop with a stale or made-up key) costs one store lookup per `ttlMs`. A cached
 *   miss cannot hide a real key: `ApiKeys` forgets the new key's digest here before the key is
 *   usable; another process can only have cached the digest of a key it never issued by being
 *   presented that exact key before it existed (guessing ~190 random bits), and only for `ttlMs`.
 * - digests that recently authenticated, so a client refused lookups for its failures (the
 *   HTTP failed-auth limiter) still gets its real keys looked up: a made-up key can never be
 *   in this set, so the lookups it allows stay bounded by the keys really in use. Being here
 *   only allows a lookup; the stored key (revoked, expired) still decides.
 */
export class RecentDigests {
  /** Digest → expiry (epoch ms). A Map iterates in insertion order: the first entry is the oldest. */
  readonly #entries = new Map<string, number>();
  readonly #capacity: number;
  readonly #ttlMs: number;

  constructor(capacity: number, ttlMs: number) {
    this.#capacity = capacity;
    this.#ttlMs = ttlMs;
  }

  /** True when `digest` was recorded less than `ttlMs` ago. */
  has(digest: string, now: number): boolean {
    const until = this.#entries.get(digest);
    if (until === undefined) return false;
    if (now < until) return true;
    this.#entries.delete(digest);
    return false;
  }

  /** Records `digest`; the oldest entry goes when the set is full. */
  add(digest: string, now: number): void {
    if (this.#capacity === 0) return;
    this.#entries.delete(digest);
    while (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    this.#entries.set(digest, now + this.#ttlMs);
  }

  /** Forgets `digest`. */
  delete(digest: string): void {
    this.#entries.delete(digest);
  }

  get size(): number {
    return this.#entries.size;
  }
}
