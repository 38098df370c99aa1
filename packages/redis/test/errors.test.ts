import { LatchError, LatchValidationError } from "@latch/core";
import { CorruptRecordError } from "@latch/core/errors";
import { afterAll, describe, expect, expectTypeOf, it, vi } from "vitest";
import { KeySpace, RedisQuota, UnsafeServerSettingError } from "../src/index.js";
import { expectLatchError } from "./support/expect.js";
import { connectRedis, deleteByPrefix, runPrefix } from "./support/redis.js";

// The errors @latch/redis throws are the core classes (or subclasses of them), recognised
// across duplicate copies of the package.

const keyPrefix = runPrefix("errors");
const connected = connectRedis();
afterAll(async () => {
  const client = await connected;
  await deleteByPrefix(client, keyPrefix);
  client.disconnect();
});

const refusal = (Class: typeof UnsafeServerSettingError) =>
  new Class({
    setting: "maxmemory-policy",
    value: "volatile-lru",
    node: "127.0.0.1:6379",
    reason: "is volatile-lru",
  });

describe("UnsafeServerSettingError", () => {
  it("stays an invalid_input LatchValidationError naming the setting", () => {
    const error = refusal(UnsafeServerSettingError);
    expect(error).toMatchObject({
      code: "invalid_input",
      setting: "maxmemory-policy",
      value: "volatile-lru",
    });
    expect(UnsafeServerSettingError.isInstance(error)).toBe(true);
    expect(LatchValidationError.isInstance(error)).toBe(true);
    expect(LatchError.is(error, "invalid_input")).toBe(true);
    expect(UnsafeServerSettingError.isInstance(LatchValidationError.at("x", "y", "z"))).toBe(false);
  });

  it("is recognised from a duplicate copy of the package, where instanceof cannot", async () => {
    vi.resetModules();
    const copy = await import("../src/index.js");
    const fromCopy = refusal(copy.UnsafeServerSettingError);
    expect(copy.UnsafeServerSettingError).not.toBe(UnsafeServerSettingError);
    expect(fromCopy instanceof UnsafeServerSettingError).toBe(false);
    expect(UnsafeServerSettingError.isInstance(fromCopy)).toBe(true);
    expect(LatchValidationError.isInstance(fromCopy)).toBe(true);
  });
});

describe("RedisQuota's corrupt records", () => {
  it("a malformed hold record is a CorruptRecordError naming the hold", async () => {
    const client = await connected;
    const quota = new RedisQuota(client, { keyPrefix, timeoutMs: 10_000 });
    await client.set(new KeySpace(keyPrefix).hold("mangled"), "not a hold record");
    const error = await expectLatchError(quota.commit("mangled", 1), "corrupt_record");
    if (!LatchError.is(error, "corrupt_record")) expect.fail("not narrowed");
    expectTypeOf(error).toEqualTypeOf<CorruptRecordError>();
    expect(CorruptRecordError.isInstance(error)).toBe(true);
    expect(error.id).toBe("mangled");
    expect(error.isRetryable).toBe(false);
  });
});
