import { canonicalHash, canonicalJson, observationHash } from "@latch/core";
import { makeObservation } from "@latch/testkit";
import { describe, expect, it } from "vitest";
import { hashCanonical } from "../src/hash.js";

describe("hashCanonical", () => {
  it("equals core's canonicalHash of the value whose canonical JSON it is given", () => {
    const observation = makeObservation({ attributes: { "a.b": "ü", z: "1" } });
    expect(hashCanonical(canonicalJson(observation))).toBe(observationHash(observation));
    const value = { b: [1, "x", { d: null, c: 2.5 }], a: "é" };
    expect(hashCanonical(canonicalJson(value))).toBe(canonicalHash(value));
  });
});
