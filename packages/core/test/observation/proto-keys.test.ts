import { describe, expect, it } from "vitest";
import {
  createLatch,
  InMemoryPricingSource,
  LatchValidationError,
  MemoryObservationStore,
  MemoryRatedRecordStore,
  parseObservation,
} from "../../src/index.js";
import { observation, snapshot, thrown } from "../support.js";

// JSON.parse makes `__proto__` an own key; zod's records drop it unread (no error, no value).
// It must be refused naming the field, as any other unknown meter or bad attribute is.
const json = (text: string) => JSON.parse(text) as unknown;
const base = JSON.stringify(observation({ input_tokens: 5 }));

function pathsOf(fn: () => unknown): string[] {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(LatchValidationError);
  return (e as LatchValidationError).issues.map((i) => i.path);
}

describe("a `__proto__` key from JSON is refused, never dropped in silence", () => {
  it("in meters (a number or an object)", () => {
    for (const value of ["7", '{"output_tokens":7}']) {
      const input = json(base.replace('"input_tokens":5', `"input_tokens":5,"__proto__":${value}`));
      expect(pathsOf(() => parseObservation(input))).toContain("meters.__proto__");
    }
  });

  it("in attributes", () => {
    for (const value of ['"x"', '{"team":"b"}']) {
      const input = json(base.replace(/}$/, `,"attributes":{"team":"a","__proto__":${value}}}`));
      expect(pathsOf(() => parseObservation(input))).toContain("attributes.__proto__");
    }
  });

  it("through record(): nothing stored", async () => {
    const observations = new MemoryObservationStore();
    const latch = createLatch({
      observations,
      rated: new MemoryRatedRecordStore(),
      pricing: new InMemoryPricingSource([
        snapshot({ prices: { input_tokens: { perMillion: "1" } } }),
      ] as never),
    });
    const input = json(base.replace('"input_tokens":5', '"input_tokens":5,"__proto__":{"output_tokens":7}'));
    await expect(latch.record(input as never)).rejects.toBeInstanceOf(LatchValidationError);
    expect(await observations.get("req-1:0:openai")).toBeUndefined();
  });

  it("other keys are unchanged: `constructor` is an unknown meter, a plain observation parses", () => {
    const input = json(base.replace('"input_tokens":5', '"input_tokens":5,"constructor":1'));
    expect(pathsOf(() => parseObservation(input))).toContain("meters.constructor");
    expect(parseObservation(json(base)).meters).toEqual({ input_tokens: 5 });
  });
});

describe("correct(): a `__proto__` meter from JSON is refused too", () => {
  it("names meters.__proto__, and no version 2 is stored", async () => {
    const rated = new MemoryRatedRecordStore();
    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated,
      pricing: new InMemoryPricingSource([
        snapshot({ prices: { input_tokens: { perMillion: "1" } } }),
      ] as never),
    });
    await latch.record(observation({ input_tokens: 5 }));
    const e = await latch
      .correct("req-1:0:openai", json('{"input_tokens":6,"__proto__":7}') as never)
      .catch((x) => x);
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues.map((i) => i.path)).toContain("meters.__proto__");
    expect((await rated.current("req-1:0:openai"))?.version).toBe(1);
  });
});
