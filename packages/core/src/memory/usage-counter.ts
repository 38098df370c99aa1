import {
  counterOpConflict,
  CounterKeySchema as KeySchema,
  CounterPeriodSchema as PeriodSchema,
  parseCounterAddOptions,
} from "../contracts/inputs.js";
import {
  type CounterAddOptions,
  DEFAULT_COUNTER_OP_RETENTION_MS,
  type UsageCounter,
} from "../contracts/quota.js";
import { OverflowError } from "../errors/index.js";
import { QuantitySchema } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";

/** One applied operation: its quantity and the answer it got. */
interface Op {
  quantity: number;
  previous: number;
  at: number;
}

interface Period {
  total: number;
  ops: Map<string, Op>;
}

export interface MemoryUsageCounterOptions {
  /** How long operation records are kept after their add. Default 100 days. */
  opRetentionMs?: number;
  /** The clock expiry is measured by (tests). Default `Date.now`. */
  now?: () => number;
}

/**
 * The embedded {@link UsageCounter}: cumulative usage per key and billing period in process
 * memory. `add` is one synchronous read-modify-write behind an async signature, so concurrent
 * adds each see a distinct previous total (they apply in some serial order) and a tier
 * boundary is split exactly once. An add with an `opId` is recorded with its answer in the
 * same step, so a replay returns the first answer and counts nothing. Expired operation
 * records are swept every 10,000 adds.
 *
 * @example
 * const counter = new MemoryUsageCounter();
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 1_500, { opId: "evt-1" }); // 0
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 500, { opId: "evt-2" });   // 1500
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 1_500, { opId: "evt-1" }); // 0: a replay
 */
export class MemoryUsageCounter implements UsageCounter {
  /** key → period → total and operations. Nested maps, so no separator can make two pairs collide. */
  readonly #periods = new Map<string, Map<string, Period>>();
  readonly #retentionMs: number;
  readonly #now: () => number;
  #addsSinceSweep = 0;

  constructor(options: MemoryUsageCounterOptions = {}) {
    this.#retentionMs = options.opRetentionMs ?? DEFAULT_COUNTER_OP_RETENTION_MS;
    this.#now = options.now ?? Date.now;
  }

  async add(
    key: string,
    period: string,
    quantity: number,
    options?: CounterAddOptions | AbortSignal,
  ): Promise<number> {
    const { opId, signal } = parseCounterAddOptions(options, "UsageCounter.add");
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.add", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.add", "period");
    const q = parseWith(QuantitySchema, quantity, "UsageCounter.add", "quantity");
    const now = this.#now();
    let periods = this.#periods.get(k);
    let entry = periods?.get(p);
    if (opId !== undefined && entry !== undefined) {
      const op = entry.ops.get(opId);
      if (op !== undefined && now - op.at < this.#retentionMs) {
        if (op.quantity !== q) {
          throw counterOpConflict(opId, op.quantity, q);
        }
        return op.previous;
      }
    }
    const previous = entry?.total ?? 0;
    if (previous + q > Number.MAX_SAFE_INTEGER) {
      throw new OverflowError({ path: "quantity", reason: "the period total would exceed 2^53-1" });
    }
    if (periods === undefined) {
      periods = new Map();
      this.#periods.set(k, periods);
    }
    if (entry === undefined) {
      entry = { total: 0, ops: new Map() };
      periods.set(p, entry);
    }
    entry.total = previous + q;
    if (opId !== undefined) entry.ops.set(opId, { quantity: q, previous, at: now });
    if (++this.#addsSinceSweep >= 10_000) this.#sweep(now);
    return previous;
  }

  async get(key: string, period: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.get", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.get", "period");
    return this.#periods.get(k)?.get(p)?.total ?? 0;
  }

  /** Operation records kept now (every key and period), for tests of retention. */
  get opCount(): number {
    let n = 0;
    for (const periods of this.#periods.values()) for (const e of periods.values()) n += e.ops.size;
    return n;
  }

  #sweep(now: number): void {
    this.#addsSinceSweep = 0;
    for (const periods of this.#periods.values()) {
      for (const entry of periods.values()) {
        for (const [id, op] of entry.ops) if (now - op.at >= this.#retentionMs) entry.ops.delete(id);
      }
    }
  }
}
