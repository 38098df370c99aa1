import { describe, expect, it } from "vitest";
import { IsoTimestampSchema, parseWith } from "../../src/adapter.js";
import { parseObservation } from "../../src/index.js";
import { observation, thrown } from "../support.js";

describe("timestamps: ISO 8601 UTC in the years 1970–9999", () => {
  it("accepts the first and last instants and fractions; refuses other years, offsets and five-digit years", () => {
    for (const fine of [
      "1970-01-01T00:00:00Z",
      "2026-03-01T12:34:56.789Z",
      "9999-12-31T23:59:59.999999999Z",
    ]) {
      expect(IsoTimestampSchema.safeParse(fine).success, fine).toBe(true);
    }
    for (const bad of [
      "0000-01-01T00:00:00Z",
      "0050-06-01T00:00:00Z",
      "0099-12-31T23:59:59Z",
      "1969-12-31T23:59:59.999Z",
      "+010000-01-01T00:00:00Z",
      "10000-01-01T00:00:00Z",
      "-000001-01-01T00:00:00Z",
      "2026-03-01T00:00:00+01:00",
    ]) {
      expect(IsoTimestampSchema.safeParse(bad).success, bad).toBe(false);
    }
  });

  it("names the field and the range, never the value", () => {
    const error = thrown(() => parseWith(IsoTimestampSchema, "0050-06-01T00:00:00Z", "test", "at")) as {
      issues: Array<{ path: string; message: string }>;
      message: string;
    };
    expect(error.issues).toEqual([{ path: "at", message: "expected a year from 1970 to 9999" }]);
    expect(JSON.stringify(error.issues)).not.toContain("0050");
    // A malformed value has one issue, the format's (no year check on it).
    const malformed = thrown(() => parseWith(IsoTimestampSchema, "yesterday", "test", "at")) as {
      issues: Array<{ path: string; message: string }>;
    };
    expect(malformed.issues).toEqual([
      { path: "at", message: "expected an ISO 8601 UTC timestamp such as 2026-01-01T00:00:00Z" },
    ]);
    const early = observation({ input_tokens: 1 });
    const refused = thrown(() =>
      parseObservation({ ...early, timing: { ...early.timing, startedAt: "0050-06-01T00:00:00Z" } }),
    ) as { issues: Array<{ path: string }> };
    expect(refused.issues.map((i) => i.path)).toContain("timing.startedAt");
  });
});
