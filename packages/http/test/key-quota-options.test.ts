import type { ApiKeys } from "@latch/core";
import { keyQuota } from "@latch/http";
import { describe, expect, it } from "vitest";

// keyQuota's own settings are checked when the middleware is made: a hold TTL the quota
// stores would refuse fails at start-up, naming ttlMs, instead of a 400 on every request.
describe("keyQuota options", () => {
  const keys = {} as ApiKeys; // never reached: the options fail first
  it("refuses a ttlMs over 2,147,483,647 ms, or not a whole positive number, naming ttlMs", () => {
    for (const ttlMs of [2_147_483_648, 30 * 24 * 3_600_000, 0, -1, 1.5, Number.NaN]) {
      expect(() => keyQuota({ keys, estimate: () => 1, ttlMs }), String(ttlMs)).toThrow(
        expect.objectContaining({
          code: "invalid_input",
          issues: [expect.objectContaining({ path: "ttlMs" })],
        }),
      );
    }
  });

  it("takes the limit itself and the 5-minute default", () => {
    expect(typeof keyQuota({ keys, estimate: () => 1, ttlMs: 2_147_483_647 })).toBe("function");
    expect(typeof keyQuota({ keys, estimate: () => 1 })).toBe("function");
  });
});
