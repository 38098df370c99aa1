/** Fewest operations between two passes: small maps are not scanned over and over. */
const MIN_INTERVAL = 1_000;

/**
 * Lazily deletes the hold records of an in-memory store once they are due (resolved for
 * longer than the retention). Each operation of the store calls {@link tick}; every
 * `max(1,000, size / 2)` ticks one pass scans the records and deletes the due ones. That costs
 * O(1) per operation amortised, and keeps the records below about twice those resolved within
 * the retention (plus the unresolved ones): between two passes at most half as many records
 * as the last pass left can be added.
 */
export class HoldPurger<H> {
  readonly #records: Map<string, H>;
  readonly #dueAt: (record: H) => number;
  readonly #remove: (record: H) => void;
  #ticks = 0;
  #interval = MIN_INTERVAL;

  /**
   * `dueAt(record)`: when the record may go (epoch ms, `Infinity` for never yet);
   * `remove(record)`: deletes it everywhere it is referenced (`records` included).
   */
  constructor(records: Map<string, H>, dueAt: (record: H) => number, remove: (record: H) => void) {
    this.#records = records;
    this.#dueAt = dueAt;
    this.#remove = remove;
  }

  /** Counts one operation; runs a pass when enough have passed. */
  tick(now: number): void {
    if (++this.#ticks >= this.#interval) this.purge(now);
  }

  /** One pass now: deletes every record due at `now`; returns how many. */
  purge(now: number): number {
    let purged = 0;
    for (const record of this.#records.values()) {
      if (this.#dueAt(record) <= now) {
        this.#remove(record); // deleting the current entry keeps a Map iterator valid
        purged++;
      }
    }
    this.#ticks = 0;
    this.#interval = Math.max(MIN_INTERVAL, Math.floor(this.#records.size / 2));
    return purged;
  }
}
