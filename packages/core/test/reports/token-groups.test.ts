import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TOKEN_GROUP_NAMES, TOKEN_GROUPS, tokenGroupsOf } from "../../src/reports/token-groups.js";
import { type MeterSet, TOKEN_METERS } from "../../src/schemas/meters.js";

/** The sums as they were computed before the number fast path: bigints throughout. */
function reference(meters: MeterSet): Record<string, bigint> {
  const sums: Record<string, bigint> = {};
  for (const group of TOKEN_GROUP_NAMES) {
    let sum = 0n;
    for (const kind of TOKEN_GROUPS[group]) sum += BigInt(meters[kind] ?? 0);
    sums[group] = sum;
  }
  return sums;
}

const MAX = Number.MAX_SAFE_INTEGER;

describe("tokenGroupsOf", () => {
  it("sums each group exactly, as bigints, for any quantities (sums past 2^53-1 included)", () => {
    const quantity = fc.oneof(
      fc.nat(1_000_000),
      fc.integer({ min: 0, max: MAX }),
      fc.constantFrom(0, 1, MAX, MAX - 1, 2 ** 52, 2 ** 53 - 2),
    );
    const meters = fc.dictionary(fc.constantFrom(...TOKEN_METERS), quantity) as fc.Arbitrary<MeterSet>;
    fc.assert(
      fc.property(meters, (m) => {
        expect(tokenGroupsOf(m)).toEqual(reference(m));
      }),
      { numRuns: 3_000 },
    );
  });

  it("is exact where number addition would round", () => {
    const m: MeterSet = {
      input_tokens: MAX,
      audio_input_tokens: MAX,
      output_tokens: MAX,
      reasoning_tokens: 1,
    };
    const groups = tokenGroupsOf(m);
    expect(groups.inputTokens).toBe(2n * BigInt(MAX));
    expect(groups.outputTokens).toBe(BigInt(MAX) + 1n);
    expect(groups.totalTokens).toBe(3n * BigInt(MAX) + 1n);
  });

  it("answers values no schema checked as the bigint sums did: the same sum or the same error", () => {
    const loose = { input_tokens: "5", output_tokens: null, cached_input_tokens: -0 } as unknown as MeterSet;
    expect(tokenGroupsOf(loose)).toEqual(reference(loose));
    expect(() => reference({ input_tokens: 1.5 })).toThrow(RangeError);
    expect(() => tokenGroupsOf({ input_tokens: 1.5 })).toThrow(RangeError);
    expect(() => tokenGroupsOf({ input_tokens: Number.NaN })).toThrow(RangeError);
  });
});
