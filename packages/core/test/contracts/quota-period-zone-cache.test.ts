import { afterEach, describe, expect, it } from "vitest";
import { QuotaPeriodSchema, quotaPeriodBounds } from "../../src/contracts/quota-period.js";

// Time-zone formatters are cached per zone name (building one costs more than a whole period
// computation). Zone names come from clients (POST /api/billing/keys `quota.period.time_zone`),
// and Intl takes any letter case, so a client can send many distinct valid names. The cache is
// bounded; once full it must still keep the zones in use, not freeze on the first 1,000 names
// it saw (every later zone would then build a formatter on each reserve, commit and balance).
const Real = Intl.DateTimeFormat;
let built = 0;

afterEach(() => {
  Intl.DateTimeFormat = Real;
});

/** The first `n` letter-case spellings of `zone` (all valid to Intl, all distinct). */
function spellings(zone: string, n: number): string[] {
  const out: string[] = [];
  const letters = [...zone].flatMap((c, i) => (/[a-z]/i.test(c) ? [i] : []));
  for (let mask = 0; out.length < n; mask++) {
    const chars = [...zone];
    letters.forEach((at, bit) => {
      const c = chars[at] as string;
      chars[at] = mask & (1 << bit) ? c.toUpperCase() : c.toLowerCase();
    });
    out.push(chars.join(""));
  }
  return out;
}

describe("quota period time-zone formatter cache", () => {
  it("after 1,200 distinct client spellings, a zone in use builds its formatter once, not on every call", () => {
    for (const timeZone of spellings("Europe/Berlin", 1_200)) {
      expect(QuotaPeriodSchema.safeParse({ every: "day", timeZone }).success).toBe(true);
    }
    Intl.DateTimeFormat = new Proxy(Real, {
      construct(target, args) {
        built += 1;
        return Reflect.construct(target, args);
      },
    });
    const at = Date.parse("2026-07-14T21:30:00Z");
    for (let i = 0; i < 20; i++) {
      expect(quotaPeriodBounds({ every: "day", timeZone: "Asia/Tokyo" }, at + i)).toEqual({
        start: Date.parse("2026-07-14T15:00:00Z"),
        end: Date.parse("2026-07-15T15:00:00Z"),
      });
    }
    expect(built).toBe(1);
  });
});
