// Found by an adversarial review: the number of meters was unbounded. An observation with 13,000
// `custom:` meters (under 1 MiB of JSON) took ~2.5 s of CPU to parse (the canonical-order
// insertion is quadratic), and one over NATS's max_payload was spooled by a fleet gateway and
// then blocked every spooled record behind it forever.
import { describe, expect, it } from "vitest";
import { LatchValidationError, parseObservation } from "../../src/index.js";
import { MAX_METERS, type MeterSet } from "../../src/schemas/meters.js";
import { observation, thrown } from "../support.js";

function customMeters(n: number): MeterSet {
  const meters: Record<string, number> = { input_tokens: 10 };
  for (let i = 1; i < n; i++) meters[`custom:m${i}`] = 1;
  return meters as MeterSet;
}

describe("meters per observation", () => {
  it(`accepts ${MAX_METERS} meters`, () => {
    expect(Object.keys(parseObservation(observation(customMeters(MAX_METERS))).meters)).toHaveLength(64);
  });

  it("refuses more, naming the field and the bound, without parsing each meter", () => {
    const error = thrown(() => parseObservation(observation(customMeters(MAX_METERS + 1))));
    expect(error).toBeInstanceOf(LatchValidationError);
    expect((error as LatchValidationError).issues[0]).toMatchObject({ path: "meters" });
    expect((error as Error).message).toBe("Invalid UsageObservation: meters: at most 64 meters (got 65)");

    const started = Date.now();
    const huge = thrown(() => parseObservation(observation(customMeters(13_000))));
    expect((huge as LatchValidationError).code).toBe("invalid_input");
    expect(Date.now() - started).toBeLessThan(2_000); // was ~2.5 s of CPU on one call
  });
});
