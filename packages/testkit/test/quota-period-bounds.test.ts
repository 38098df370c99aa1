import { parseQuotaPeriod, quotaPeriodBounds } from "@latch/core/adapter";
import { describe, expect, it } from "vitest";
import { QUOTA_PERIOD_CASES } from "../src/index.js";

const utc = (iso: string) => Date.parse(iso);

describe("quotaPeriodBounds (core's calendar arithmetic, Intl time-zone data)", () => {
  for (const c of QUOTA_PERIOD_CASES) {
    it(c.title, () => {
      expect(quotaPeriodBounds(c.period, c.at)).toEqual({ start: c.start, end: c.end });
    });
  }

  it("starts a day whose local midnight the zone skips at the end of the gap (Santiago, Havana)", () => {
    // America/Santiago springs from 24:00 to 01:00; America/Havana from 00:00 to 01:00.
    expect(
      quotaPeriodBounds({ every: "day", timeZone: "America/Santiago" }, utc("2026-09-06T12:00:00Z")),
    ).toEqual({
      start: utc("2026-09-06T04:00:00Z"),
      end: utc("2026-09-07T03:00:00Z"),
    });
    expect(
      quotaPeriodBounds({ every: "day", timeZone: "America/Havana" }, utc("2026-03-08T12:00:00Z")),
    ).toEqual({
      start: utc("2026-03-08T05:00:00Z"),
      end: utc("2026-03-09T04:00:00Z"),
    });
  });

  it("gives every instant of a year exactly one Berlin day, the days tiling the year", () => {
    const period = { every: "day" as const, timeZone: "Europe/Berlin" };
    let { start, end } = quotaPeriodBounds(period, utc("2026-01-01T00:00:00+01:00"));
    expect(start).toBe(utc("2025-12-31T23:00:00Z"));
    const lengths = new Map<number, number>();
    for (let day = 0; day < 365; day++) {
      const next = quotaPeriodBounds(period, end);
      expect(next.start).toBe(end);
      expect(quotaPeriodBounds(period, end - 1)).toEqual({ start, end });
      lengths.set((end - start) / 3_600_000, (lengths.get((end - start) / 3_600_000) ?? 0) + 1);
      ({ start, end } = next);
    }
    expect(Object.fromEntries(lengths)).toEqual({ 23: 1, 24: 363, 25: 1 });
  });

  it("gives a rolling window as the last rollingMs up to now, from the oldest 36 s bucket still counted", () => {
    // now − rollingMs + 1 = 6,400,001 lies in the bucket [6,372,000, 6,408,000).
    expect(quotaPeriodBounds({ rollingMs: 3_600_000 }, 10_000_000)).toEqual({
      start: 6_372_000,
      end: 10_000_000,
    });
  });

  it("resolves time zones to their canonical names, UTC by default", () => {
    expect(parseQuotaPeriod({ every: "month" }, "t")).toEqual({ every: "month", timeZone: "UTC" });
    expect(parseQuotaPeriod({ every: "day", timeZone: "utc" }, "t")).toEqual({
      every: "day",
      timeZone: "UTC",
    });
    expect(parseQuotaPeriod({ every: "day", timeZone: "europe/berlin" }, "t")).toEqual({
      every: "day",
      timeZone: "Europe/Berlin",
    });
  });
});
