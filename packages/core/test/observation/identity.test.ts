import { describe, expect, it } from "vitest";
import { OverflowError } from "../../src/errors/index.js";
import { accumulate, LatchValidationError, parseObservation, UsageEventId } from "../../src/index.js";
import { sumMeterSets } from "../../src/observation/meter-set.js";
import { isParsedObservation } from "../../src/observation/parse.js";
import { observation, thrown } from "../support.js";

describe("UsageEventId", () => {
  it("is deterministic per request, attempt and provider", () => {
    expect(UsageEventId.fromAttempt("req-1", 0, "openai")).toBe("req-1:0:openai");
    expect(UsageEventId.fromAttempt("req-1", 1, "anthropic")).toBe("req-1:1:anthropic");
  });
  it("builds multi-step ids", () => {
    expect(UsageEventId.builder("req-1").attempt(2).provider("openai").step(3).phase("tool").build()).toBe(
      "req-1:2:openai:step3:tool",
    );
  });
  it("rejects ambiguous parts by name", () => {
    expect(
      (thrown(() => UsageEventId.fromAttempt("a:b", 0, "openai")) as LatchValidationError).issues[0]?.path,
    ).toBe("requestId");
    expect(
      (thrown(() => UsageEventId.fromAttempt("a", -1, "openai")) as LatchValidationError).issues[0]?.path,
    ).toBe("attempt");
    expect((thrown(() => UsageEventId.builder("a").build()) as LatchValidationError).issues[0]?.path).toBe(
      "provider",
    );
  });
});

describe("MeterSet accumulation", () => {
  it("adds without mutating", () => {
    const a = accumulate({}, "input_tokens", 10);
    const b = accumulate(a, "input_tokens", 5);
    expect(a).toEqual({ input_tokens: 10 });
    expect(b).toEqual({ input_tokens: 15 });
    expect(sumMeterSets([a, b, { output_tokens: 1 }])).toEqual({ input_tokens: 25, output_tokens: 1 });
  });
  it("rejects negatives, fractions, unknown meters and overflow", () => {
    expect(thrown(() => accumulate({}, "input_tokens", -1))).toBeInstanceOf(LatchValidationError);
    expect(thrown(() => accumulate({}, "input_tokens", 0.5))).toBeInstanceOf(LatchValidationError);
    expect(thrown(() => accumulate({}, "bogus" as never, 1))).toBeInstanceOf(LatchValidationError);
    expect(
      thrown(() => accumulate({ input_tokens: Number.MAX_SAFE_INTEGER }, "input_tokens", 1)),
    ).toBeInstanceOf(OverflowError);
  });
});

describe("isParsedObservation", () => {
  it("is true only for what parseObservation returned", () => {
    const parsed = parseObservation(observation({ input_tokens: 1 }));
    expect(isParsedObservation(parsed)).toBe(true);
    expect(isParsedObservation(observation({ input_tokens: 1 }))).toBe(false);
    expect(isParsedObservation({ ...parsed })).toBe(false);
    expect(isParsedObservation(Object.create(parsed))).toBe(false);
    for (const value of [undefined, null, 0, "x", {}]) expect(isParsedObservation(value)).toBe(false);
  });
});
