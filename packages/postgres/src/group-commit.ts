/**
 * Group commit of `PostgresObservationStore`'s record writer (`groupCommit`): concurrent calls
 * share one transaction, so a commit's flush to disk is paid once per batch, not once per call.
 */
export interface GroupCommitOptions {
  /**
   * Longest a call waits for others to join its batch, in milliseconds (0 to 1,000). A call that
   * finds no batch of this store being committed is sent at once (after the calls made in the
   * same turn of the event loop), so a lone call is not delayed; while a batch is in flight,
   * the calls behind it gather for up to this long, or until it commits. Default 2.
   */
  maxWaitMs?: number;
  /**
   * Most calls in one transaction (1 to 10,000); a full batch is sent at once. Default 64. A
   * batch of 16 or more that leaves while no other is in flight goes as two transactions of
   * half the calls each, so this process prepares one while the server commits the other.
   */
  maxBatch?: number;
}

/** Resolved {@link GroupCommitOptions}. @internal */
export interface GroupCommitSettings {
  readonly maxWaitMs: number;
  readonly maxBatch: number;
}

export const DEFAULT_GROUP_COMMIT: GroupCommitSettings = { maxWaitMs: 2, maxBatch: 64 };

/** A batch sent with nothing in flight is split in two from twice this many calls. */
const SPLIT_FROM = 8;

function bounded(
  name: string,
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new TypeError(`groupCommit.${name} must be a whole number from ${min} to ${max}`);
  }
  return value;
}

/** Validates `groupCommit` (a `TypeError` naming the option); `false` turns it off. @internal */
export function resolveGroupCommit(
  options: GroupCommitOptions | false | undefined,
): GroupCommitSettings | undefined {
  if (options === false) return undefined;
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError("groupCommit must be an object or false");
  }
  return {
    maxWaitMs: bounded("maxWaitMs", options?.maxWaitMs, DEFAULT_GROUP_COMMIT.maxWaitMs, 0, 1_000),
    maxBatch: bounded("maxBatch", options?.maxBatch, DEFAULT_GROUP_COMMIT.maxBatch, 1, 10_000),
  };
}

/**
 * Gathers entries into batches and hands each to `commit`, which settles every entry of its
 * batch itself and never rejects. A batch leaves when it is full, when `maxWaitMs` has passed
 * since its first entry, or as soon as no batch is in flight (nothing to wait for); a batch of
 * 16 calls or more that leaves with nothing in flight goes as two transactions.
 * @internal
 */
export class GroupCommit<E> {
  readonly #commit: (batch: E[]) => Promise<void>;
  readonly #settings: GroupCommitSettings;
  readonly #keyOf: (entry: E) => string;
  #pending: E[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #soon: ReturnType<typeof setImmediate> | undefined;
  #inFlight = 0;

  constructor(
    settings: GroupCommitSettings,
    commit: (batch: E[]) => Promise<void>,
    keyOf: (entry: E) => string,
  ) {
    this.#settings = settings;
    this.#commit = commit;
    this.#keyOf = keyOf;
  }

  add(entry: E): void {
    this.#pending.push(entry);
    if (this.#pending.length >= this.#settings.maxBatch) this.#send();
    else if (this.#inFlight === 0) this.#soon ??= setImmediate(() => this.#send());
    else this.#timer ??= setTimeout(() => this.#send(), this.#settings.maxWaitMs);
  }

  #send(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#soon !== undefined) clearImmediate(this.#soon);
    this.#timer = undefined;
    this.#soon = undefined;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    if (this.#inFlight === 0 && batch.length >= 2 * SPLIT_FROM) {
      // Nothing in flight: two transactions, not one. While the server commits one, this
      // process prepares the next from the callers the other answers, so the two overlap from
      // then on; one batch of every caller would leave each side idle half the time (measured:
      // 64 callers, maxBatch 64, one batch of 64 at a time, 55% of the split's rate).
      const [first, second] = this.#halves(batch);
      this.#start(first);
      if (second.length > 0) this.#start(second);
    } else this.#start(batch);
  }

  /**
   * Two halves of a batch, every entry of one key in the same half and in arrival order: the
   * calls of one event stay in one transaction, answered as the unsplit batch would answer them.
   */
  #halves(batch: E[]): [E[], E[]] {
    const groups = new Map<string, E[]>();
    for (const entry of batch) {
      const key = this.#keyOf(entry);
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [entry]);
      else group.push(entry);
    }
    const first: E[] = [];
    const second: E[] = [];
    const half = batch.length / 2;
    for (const group of groups.values()) (first.length < half ? first : second).push(...group);
    return [first, second];
  }

  #start(batch: E[]): void {
    this.#inFlight++;
    void this.#commit(batch).finally(() => {
      this.#inFlight--;
      // The calls waiting behind this batch need not wait any longer.
      if (this.#inFlight === 0 && this.#pending.length > 0) this.#soon ??= setImmediate(() => this.#send());
    });
  }
}
