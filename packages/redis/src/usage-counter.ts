import { LatchValidationError } from "@latch/core";
import {
  type CounterAddOptions,
  counterOpConflict,
  DEFAULT_COUNTER_OP_RETENTION_MS,
  CounterKeySchema as KeySchema,
  CounterPeriodSchema as PeriodSchema,
  parseCounterAddOptions,
  parseWith,
  QuantitySchema,
  type UsageCounter,
} from "@latch/core/adapter";
import { type RedisClient, withTimeout } from "./client.js";
import { KeySpace } from "./keys.js";
import type { LuaScripts } from "./lua/generated.js";
import { isFailure, scriptError } from "./script-errors.js";
import { defineScripts, replyInteger } from "./scripts.js";
import { isRefusal, isTransient, sendWithin } from "./transient.js";

export interface RedisUsageCounterOptions {
  /** Prefix of every key (no `{` or `}`). Default `latch`. */
  keyPrefix?: string;
  /**
   * Upper bound on one call; past it the call rejects. Default 1,000 ms. Within it a call waits
   * for a client that is not ready yet and sends again after a refusal the server did not run
   * (`TRYAGAIN`, `CLUSTERDOWN`, `LOADING`, …); never after a lost connection, as an add that
   * may have run must not be sent twice.
   */
  timeoutMs?: number;
  /**
   * How long the operation records of a counter key and period (adds with an `opId`) are kept
   * after the period's last add. Default 100 days. They carry a TTL: under an evicting
   * `maxmemory-policy` (volatile-*) Redis may drop them early, and a replay would then count
   * again — run counters on `noeviction`.
   */
  opRetentionMs?: number;
}

/**
 * {@link UsageCounter} on Redis or Redis Cluster: one hash per counter key (tagged by the key,
 * so one slot) with a field per period. `add` is one Lua script, so concurrent adds line up in
 * one serial order and each sees a distinct previous total; a total past 2^53-1 is rejected as
 * `overflow` and changes nothing. Totals are stored and returned as integer strings. An add with
 * an `opId` runs `counterAddOnce`, which records the operation and its answer in a hash of the
 * same slot in the same script: a replay changes nothing and gets the first answer.
 *
 * @example
 * const counter = new RedisUsageCounter(redis);
 * await counter.add("acme:gpt-4o:input_tokens", "2026-02", 1_500); // 0
 */
export class RedisUsageCounter implements UsageCounter {
  readonly #client: RedisClient;
  readonly #scripts: LuaScripts;
  readonly #keys: KeySpace;
  readonly #timeoutMs: number;
  readonly #retentionMs: string;

  constructor(client: RedisClient, options: RedisUsageCounterOptions = {}) {
    this.#client = client;
    this.#keys = new KeySpace(options.keyPrefix ?? "latch");
    this.#timeoutMs = options.timeoutMs ?? 1_000;
    const retention = options.opRetentionMs ?? DEFAULT_COUNTER_OP_RETENTION_MS;
    if (!Number.isSafeInteger(retention) || retention < 1) {
      throw LatchValidationError.at(
        "RedisUsageCounter options",
        "opRetentionMs",
        "expected a whole number of ms ≥ 1",
      );
    }
    this.#retentionMs = String(retention);
    this.#scripts = defineScripts(client);
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
    const subject = "UsageCounter.add";
    if (opId !== undefined) {
      // Idempotent by opId: it may be resent after any transient error, a lost reply included.
      const keys = { counter: this.#keys.counter(k), ops: this.#keys.counterOps(k, p) };
      const args = { period: p, quantity: String(q), opId, retentionMs: this.#retentionMs };
      const reply = await withTimeout(
        sendWithin(this.#client, Date.now() + this.#timeoutMs, isTransient, () =>
          this.#scripts.counterAddOnce(keys, args),
        ),
        this.#timeoutMs,
      );
      if (isFailure(reply)) {
        throw scriptError("counterAddOnce", reply, {
          subject,
          id: opId,
          conflict: (conflict) => counterOpConflict(opId, String(conflict[2]), q),
        });
      }
      return replyInteger(reply[1], "counterAddOnce.previous");
    }
    // Without an opId an add is not idempotent: only what surely did not run is resent.
    const keys = { counter: this.#keys.counter(k) };
    const args = { period: p, quantity: String(q) };
    const reply = await withTimeout(
      sendWithin(this.#client, Date.now() + this.#timeoutMs, isRefusal, () =>
        this.#scripts.counterAdd(keys, args),
      ),
      this.#timeoutMs,
    );
    if (isFailure(reply)) throw scriptError("counterAdd", reply, { subject, id: k });
    return replyInteger(reply[1], "counterAdd.previous");
  }

  async get(key: string, period: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    const k = parseWith(KeySchema, key, "UsageCounter.get", "key");
    const p = parseWith(PeriodSchema, period, "UsageCounter.get", "period");
    const hash = this.#keys.counter(k);
    const total = await withTimeout(
      sendWithin(this.#client, Date.now() + this.#timeoutMs, isRefusal, () => this.#client.hget(hash, p)),
      this.#timeoutMs,
    );
    return total === null ? 0 : replyInteger(total, "counter.total");
  }
}
