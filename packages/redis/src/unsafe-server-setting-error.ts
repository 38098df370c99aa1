import { LatchError, LatchValidationError } from "@latch/core";

const marker = Symbol.for("latch.error.unsafe_server_setting");

/**
 * `invalid_input`: the Redis server is configured so that Latch cannot keep its guarantees —
 * `maxmemory-policy` lets the server evict quota keys (a hold record, a limit), or the setting
 * could not be read at all. `setting` names the server setting, `value` what the server
 * answered (`undefined` when neither `CONFIG GET` nor `INFO` would say), `node` the server
 * (`host:port`). Thrown by {@link RedisQuota.ready} and by every quota call until the server
 * is fixed; not retryable.
 *
 * @example
 * try { await quota.ready() } catch (e) {
 *   if (UnsafeServerSettingError.isInstance(e)) console.error(e.setting, e.value); // maxmemory-policy volatile-lru
 * }
 */
export class UnsafeServerSettingError extends LatchValidationError {
  readonly [marker] = true;
  readonly setting: string;
  readonly value: string | undefined;
  readonly node: string;

  constructor({
    setting,
    value,
    node,
    reason,
  }: { setting: string; value: string | undefined; node: string; reason: string }) {
    super({ subject: `Redis server ${node}`, issues: [{ path: setting, message: reason }] });
    this.name = "UnsafeServerSettingError";
    this.setting = setting;
    this.value = value;
    this.node = node;
  }

  static override isInstance(error: unknown): error is UnsafeServerSettingError {
    return LatchError.hasMarker(error, marker);
  }
}
