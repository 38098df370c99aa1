import { describe, expect, it } from "vitest";
import { addCalendar, type ExpirationUnit, isTimeZone } from "../../src/adapter.js";

const add = (at: string, count: number, unit: ExpirationUnit, zone?: string) =>
  new Date(addCalendar(Date.parse(at), count, unit, zone)).toISOString();

describe("grant expiration calendar", () => {
  it("clamps MONTH and YEAR to the end of a shorter month, in UTC by default", () => {
    expect(add("2026-01-31T00:00:00Z", 1, "MONTH")).toBe("2026-02-28T00:00:00.000Z");
    expect(add("2028-01-31T12:00:00Z", 1, "MONTH")).toBe("2028-02-29T12:00:00.000Z");
    expect(add("2026-03-31T00:00:00Z", 1, "MONTH")).toBe("2026-04-30T00:00:00.000Z");
    expect(add("2026-01-31T00:00:00Z", 13, "MONTH")).toBe("2027-02-28T00:00:00.000Z");
    expect(add("2028-02-29T00:00:00Z", 1, "YEAR")).toBe("2029-02-28T00:00:00.000Z");
    expect(add("2026-12-15T08:00:00Z", 1, "MONTH")).toBe("2027-01-15T08:00:00.000Z");
  });

  it("counts HOUR as elapsed time and DAY/WEEK as calendar days", () => {
    expect(add("2026-01-01T00:00:00Z", 36, "HOUR")).toBe("2026-01-02T12:00:00.000Z");
    expect(add("2026-02-27T00:00:00Z", 2, "DAY")).toBe("2026-03-01T00:00:00.000Z");
    expect(add("2026-12-28T00:00:00Z", 1, "WEEK")).toBe("2027-01-04T00:00:00.000Z");
  });

  it("keeps local midnight across a spring-forward day (a 23-hour DAY) but not for HOUR", () => {
    // New York moves to EDT on 2026-03-08 at 02:00.
    expect(add("2026-03-08T05:00:00Z", 1, "DAY", "America/New_York")).toBe("2026-03-09T04:00:00.000Z");
    expect(add("2026-03-08T05:00:00Z", 24, "HOUR", "America/New_York")).toBe("2026-03-09T05:00:00.000Z");
    expect(add("2026-03-02T05:00:00Z", 1, "WEEK", "America/New_York")).toBe("2026-03-09T04:00:00.000Z");
  });

  it("keeps local midnight across a fall-back day (a 25-hour DAY)", () => {
    // Paris moves back to CET on 2026-10-25 at 03:00.
    expect(add("2026-10-24T22:00:00Z", 1, "DAY", "Europe/Paris")).toBe("2026-10-25T23:00:00.000Z");
    expect(add("2026-02-28T23:00:00Z", 1, "MONTH", "Europe/Paris")).toBe("2026-03-31T22:00:00.000Z");
  });

  it("moves a skipped local time forward by the gap and takes the earlier of a repeated one", () => {
    // 02:30 on 2026-03-08 does not exist in New York: 03:30 EDT.
    expect(add("2026-03-07T07:30:00Z", 1, "DAY", "America/New_York")).toBe("2026-03-08T07:30:00.000Z");
    // 01:30 on 2026-11-01 happens twice in New York: the first (EDT).
    expect(add("2026-10-31T05:30:00Z", 1, "DAY", "America/New_York")).toBe("2026-11-01T05:30:00.000Z");
  });

  it("keeps milliseconds and recognises IANA zone names", () => {
    expect(add("2026-01-31T23:00:00.123Z", 1, "MONTH", "Europe/Paris")).toBe("2026-02-28T23:00:00.123Z");
    expect(isTimeZone("Europe/Paris")).toBe(true);
    expect(isTimeZone("UTC")).toBe(true);
    expect(isTimeZone("Mars/Olympus_Mons")).toBe(false);
  });
});

describe("grant expiration calendar in early years", () => {
  it("keeps years 0–99 (Date.UTC would read them as 1900–1999)", () => {
    expect(add("0050-03-01T06:00:00Z", 1, "DAY")).toBe("0050-03-02T06:00:00.000Z");
    expect(add("0099-12-31T12:00:00Z", 1, "MONTH")).toBe("0100-01-31T12:00:00.000Z");
  });
});
