import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalHash,
  canonicalJson,
  hashCanonicalJson,
  observationHash,
  ratedRecordHash,
} from "../../src/contracts/hashing.js";
import { parseObservation } from "../../src/observation/parse.js";
import { DefaultRatingEngine } from "../../src/rating/engine.js";
import type { UsageObservation } from "../../src/schemas/observation.js";
import type { RatedUsageRecord } from "../../src/schemas/rating.js";
import { observation as baseObservation, snapshot } from "../support.js";

const makeObservation = (overrides: Partial<UsageObservation>) =>
  parseObservation(baseObservation({ input_tokens: 10, output_tokens: 2 }, overrides));

/** The obvious canonical serialiser: what the fast one must equal, byte for byte. */
function reference(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "bigint") return JSON.stringify(value.toString());
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? "null" : reference(v))).join(",")}]`;
  const parts: string[] = [];
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) parts.push(`${JSON.stringify(key)}:${reference(v)}`);
  }
  return `{${parts.join(",")}}`;
}

describe("hashCanonicalJson", () => {
  it("hashes canonical text exactly like canonicalHash hashes the value", () => {
    const value = { b: 1, a: [1, 2, { d: "x", c: null }] };
    expect(hashCanonicalJson(canonicalJson(value))).toBe(canonicalHash(value));
    expect(canonicalHash(value)).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe("canonicalJson", () => {
  it("equals a plain reference serialiser for observations and for awkward values", () => {
    const values: unknown[] = [
      makeObservation({}),
      makeObservation({ attributes: { "a.b": "ü", z: "1", A: "x", "10": "n", "2": "m", é: '\u2028"\\\t' } }),
      { b: [1, "x", { d: null, c: 2.5 }], a: "é", u: undefined },
      { z: 1, y: { x: [undefined, null, Number.NaN, -0, 1e21, 1.5e-7, Infinity], w: true, v: false } },
      { "\ud83d\ude00": 1, "\uffff": 2, "\u00e9": 3, "": 4, "1": 5, "01": 6, a: 7 },
      { big: 12345678901234567890n, f: () => 1, s: Symbol("x"), d: new Date(0) },
      [[], {}, [[{}]], "", 0],
      new Date(0),
      { d: new Date(0) },
      { a: { toJSON: () => "x" } },
      Object.assign(Object.create({ toJSON: () => "inherited" }), { a: 1 }),
      Object.assign(Object.create(null), { b: "2", a: 1 }),
      "plain",
      42,
      null,
      true,
    ];
    for (const value of values) expect(canonicalJson(value)).toBe(reference(value));
    const observation = makeObservation({ attributes: { k: "v" } });
    expect(hashCanonicalJson(canonicalJson(observation))).toBe(observationHash(observation));
  });

  it("equals the reference on random nested values", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const key = () =>
      ["a", "b", "B", "ä", "10", "2", "x.y", '"q"', "\\", ""][Math.floor(random() * 10)] as string;
    const make = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.3)
        return [random() * 1e6, "s\n\u0001", null, undefined, true][Math.floor(random() * 5)];
      if (r < 0.5) return Array.from({ length: Math.floor(random() * 4) }, () => make(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 6) }, () => [key(), make(depth + 1)]),
      );
    };
    for (let i = 0; i < 2_000; i++) {
      const value = make(0);
      expect(canonicalJson(value)).toBe(reference(value));
    }
  });
});

describe("canonicalJson key order (insertion sort up to 16 keys, the built-in sort past that)", () => {
  const HOSTILE_KEYS = [
    "",
    "a",
    "B",
    "b",
    "10",
    "9",
    "01",
    "é",
    "\u0000",
    "\ud800",
    "\udc00",
    "\ud83d\ude00",
    "\uffff",
    "'",
    "\\",
    '"',
  ];

  it("equals the reference for every key count from 0 to 40, keys in any order", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ unit: "binary", maxLength: 6 })),
          {
            maxLength: 40,
            size: "max",
          },
        ),
        fc.boolean(),
        (keys, nested) => {
          const value = Object.fromEntries(
            keys.map((k, i) => [k, nested && i % 3 === 0 ? { [k]: i, z: [k] } : i]),
          );
          return canonicalJson(value) === reference(value);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("sorts a record's keys for its hash as the reference does", () => {
    const obs = makeObservation({});
    const record = new DefaultRatingEngine().rate(
      obs,
      snapshot({ prices: { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } } }),
      { ratedAt: "2026-03-02T00:00:00Z" },
    );
    const { ratedAt: _ratedAt, ...rest } = record;
    expect(ratedRecordHash(record)).toBe(hashCanonicalJson(reference(rest)));
  });
});

describe("observationHash and ratedRecordHash (serialised once per parsed observation)", () => {
  it("give exactly the hash of the canonical JSON, without ratedAt, for parsed and plain values alike", () => {
    const obs = makeObservation({ correlation: { requestId: "r1" } });
    const prices = { input_tokens: { perMillion: "2.5" }, output_tokens: { perMillion: "10" } };
    const engine = new DefaultRatingEngine();
    const matched = engine.rate(obs, snapshot({ prices, model: { billableModel: "other-model" } }), {
      ratedAt: "2026-03-02T00:00:00Z",
      modelMatch: { rule: "alias", matchedModel: "other-model" },
    });
    const records: RatedUsageRecord[] = [
      engine.rate(obs, snapshot({ prices }), { ratedAt: "2026-03-02T00:00:00Z" }),
      engine.rate(obs, snapshot({ prices }), { ratedAt: "2026-03-02T00:00:00Z", version: 2 }),
      matched,
    ];
    for (const record of records) {
      const { ratedAt: _ratedAt, ...rest } = record;
      const expected = hashCanonicalJson(reference(rest));
      expect(ratedRecordHash(record)).toBe(expected);
      expect(ratedRecordHash(record)).toBe(expected); // the observation's cached text, second time
      expect(ratedRecordHash(structuredClone(record))).toBe(expected); // a plain copy
    }
    expect(observationHash(obs)).toBe(hashCanonicalJson(reference(obs)));
    expect(observationHash(structuredClone(obs))).toBe(observationHash(obs));
  });
});
