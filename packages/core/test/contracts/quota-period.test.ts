import { describe, expect, it } from "vitest";
import {
  QUOTA_ROLLING_BUCKETS,
  quotaPeriodBounds,
  quotaRollingBucketMs,
  quotaRollingEntryAt,
} from "../../src/contracts/quota-period.js";
import { LatchValidationError } from "../../src/errors/index.js";

describe("quota periods: rolling buckets and unknown zones", () => {
  it("cuts a rolling window into buckets of ceil(rollingMs / 100) ms aligned on the epoch", () => {
    expect(QUOTA_ROLLING_BUCKETS).toBe(100);
    expect(quotaRollingBucketMs(1_000)).toBe(10);
    expect(quotaRollingBucketMs(3_600_000)).toBe(36_000);
    expect(quotaRollingBucketMs(1_234_567)).toBe(12_346);
    // A commit is recorded at its bucket's last millisecond.
    expect(quotaRollingEntryAt(10_000, 1_000)).toBe(1_099);
    expect(quotaRollingEntryAt(10_000, 1_099)).toBe(1_099);
    expect(quotaRollingEntryAt(10_000, 1_100)).toBe(1_199);
    // The window starts at the oldest bucket still counted: the bucket of now − rollingMs + 1.
    expect(quotaPeriodBounds({ rollingMs: 10_000 }, 11_098)).toEqual({ start: 1_000, end: 11_098 });
    expect(quotaPeriodBounds({ rollingMs: 10_000 }, 11_099)).toEqual({ start: 1_100, end: 11_099 });
  });

  it("answers a time zone Intl does not know with invalid_input naming period.timeZone, not a RangeError", () => {
    let thrown: unknown;
    try {
      quotaPeriodBounds({ every: "day", timeZone: "Mars/Olympus_Mons" }, Date.UTC(2026, 0, 1));
    } catch (error) {
      thrown = error;
    }
    expect(LatchValidationError.isInstance(thrown)).toBe(true);
    expect((thrown as LatchValidationError).issues.map((issue) => issue.path)).toEqual(["period.timeZone"]);
  });
});
