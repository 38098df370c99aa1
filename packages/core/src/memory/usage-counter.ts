import { CounterKeySchema as KeySchema, CounterPeriodSchema as PeriodSchema } from "../contracts/inputs.js";
import type { UsageCounter } from "../contracts/quota.js";
import { OverflowError } from "../errors/index.js";
import { QuantitySchema } from "../schemas/meters.js";
import { parseWith } from "../schemas/parse.js";

/**
 * The embedded {@link UsageCounter}: cumulative usage per key and billing period in process
 * memory. `add` is one synchronous read-modify-write behind an async signature, so concurrent
 * adds each see a distinct previous total (they apply in some serial order) and a tier
 * boundary is split exactly once.
 *
 * @example
 * const counter = new MemoryUsageCounter();
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 1_500); // 0
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 500);   // 1500
 */
export class MemoryUsageCounter implements UsageCounter {
  /** key → period → total. Nested maps, so no separator can make two pairs collide. */
  readonly #totals = new Map<string, Map<string, number>>();

  async add(key: string, period: string, quantity: number, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.add", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.add", "period");
    const q = parseWith(QuantitySchema, quantity, "UsageCounter.add", "quantity");
    let periods = this.#totals.get(k);
    const previous = periods?.get(p) ?? 0;
    if (previous + q > Number.MAX_SAFE_INTEGER) {
      throw new OverflowError({ path: "quantity", reason: "the period total would exceed 2^53-1" });
    }
    if (periods === undefined) {
      periods = new Map();
      this.#totals.set(k, periods);
    }
    periods.set(p, previous + q);
    return previous;
  }

  async get(key: string, period: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.get", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.get", "period");
    return this.#totals.get(k)?.get(p) ?? 0;
  }
}
