/**
 * Old-vs-new differential for the record path's CPU cuts (87cf995): canonicalJson's and
 * ratedRecordHash's key sort, and tokenGroupsOf's number fast path, against the code as it was
 * before (copied here as the reference), on hostile keys and hostile quantities.
 */
import * as crypto from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, ratedRecordHash } from "../../src/contracts/hashing.js";
import { TOKEN_GROUP_NAMES, TOKEN_GROUPS, tokenGroupsOf } from "../../src/reports/token-groups.js";
import { type MeterSet, TOKEN_METERS } from "../../src/schemas/meters.js";
import type { RatedUsageRecord } from "../../src/schemas/rating.js";

// canonicalJson before 87cf995 (its hot-path shape kept: sorted check, flat fast path, built-in sort).
function oldCanonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return Number.isFinite(value) ? String(value) : "null";
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return `"${value.toString()}"`;
    case "object": {
      if (value === null) return "null";
      if (Array.isArray(value)) {
        let out = "[";
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ",";
          const item = value[i];
          out += item === undefined ? "null" : oldCanonicalJson(item);
        }
        return `${out}]`;
      }
      const keys = Object.keys(value);
      let sorted = true;
      let flat = true;
      for (let i = 0; i < keys.length; i++) {
        if (i > 0 && (keys[i - 1] as string) > (keys[i] as string)) sorted = false;
        const member = (value as Record<string, unknown>)[keys[i] as string];
        const type = typeof member;
        if (type !== "string" && !(type === "number" && Number.isFinite(member)) && type !== "boolean")
          flat = false;
      }
      const proto = Object.getPrototypeOf(value);
      if (sorted && flat && (proto === Object.prototype || proto === null)) return JSON.stringify(value);
      if (!sorted) keys.sort();
      let out = "{";
      let first = true;
      for (const key of keys) {
        const member = (value as Record<string, unknown>)[key];
        if (member === undefined) continue;
        if (first) first = false;
        else out += ",";
        out += `${JSON.stringify(key)}:${oldCanonicalJson(member)}`;
      }
      return `${out}}`;
    }
    default:
      return "null";
  }
}

// ratedRecordHash before 87cf995, for records without an `observation` member.
function oldRatedRecordHash(record: object): string {
  const keys = Object.keys(record);
  keys.sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    if (key === "ratedAt") continue;
    const member = (record as Record<string, unknown>)[key];
    if (member === undefined) continue;
    if (first) first = false;
    else out += ",";
    out += `${JSON.stringify(key)}:${oldCanonicalJson(member)}`;
  }
  return `sha256:${crypto.createHash("sha256").update(`${out}}`).digest("hex")}`;
}

// tokenGroupsOf before 87cf995: bigints throughout.
function oldTokenGroupsOf(meters: MeterSet): Record<string, bigint> {
  const sums: Record<string, bigint> = {};
  for (const group of TOKEN_GROUP_NAMES) {
    let sum = 0n;
    for (const kind of TOKEN_GROUPS[group]) sum += BigInt(meters[kind] ?? 0);
    sums[group] = sum;
  }
  return sums;
}

/** Same value, or an error of the same class and message. */
function outcome<T>(f: () => T): { ok: T } | { error: string } {
  try {
    return { ok: f() };
  } catch (error) {
    return { error: `${(error as Error).constructor.name}: ${(error as Error).message}` };
  }
}

const HOSTILE_KEYS = [
  "",
  "0",
  "1",
  "01",
  "-1",
  "1.5",
  "9",
  "10",
  "4294967294",
  "4294967295",
  "4294967296",
  "9007199254740993",
  "__proto__",
  "constructor",
  "toString",
  "ratedAt",
  "\u0000",
  "\u0000\u0000",
  "a\u0000",
  "\ud800",
  "\udbff",
  "\udc00",
  "\udfff",
  "\ud800\udc00",
  "\ud83d\ude00",
  "\ud83d",
  "\ude00",
  "\uffff",
  "\ufeff",
  "\u0080",
  "\u00ff",
  "é",
  "e\u0301",
  "A",
  "a",
  "aa",
  "a ",
  " a",
];

const codeUnits = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 4 })
  .map((units) => String.fromCharCode(...units));
const key = fc.oneof(
  fc.constantFrom(...HOSTILE_KEYS),
  codeUnits,
  fc.string({ unit: "binary", maxLength: 4 }),
  fc.nat(5_000_000_000).map(String),
);

const leaf = fc.oneof(
  fc.string({ maxLength: 3 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(-0, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 53 + 2, -(2 ** 53)),
  fc.bigInt(),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
);

/** Objects built key by key (`__proto__` as an own key via defineProperty), null-prototype ones too. */
function build(entries: Array<[string, unknown]>, nullProto: boolean): Record<string, unknown> {
  const o: Record<string, unknown> = nullProto ? Object.create(null) : {};
  for (const [k, v] of entries)
    Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  return o;
}

const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, leaf, tie("obj"), tie("arr")),
  arr: fc.array(tie("node"), { maxLength: 4 }),
  obj: fc
    .tuple(fc.uniqueArray(fc.tuple(key, tie("node")), { selector: ([k]) => k, maxLength: 20 }), fc.boolean())
    .map(([entries, nullProto]) => build(entries as Array<[string, unknown]>, nullProto)),
})).node;

describe("canonicalJson / ratedRecordHash: same bytes as before 87cf995", () => {
  it("on objects of 0..40 hostile keys, every count around the 16-key switch", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(key, { minLength: 0, maxLength: 40, size: "max" }),
        fc.boolean(),
        fc.boolean(),
        (keys, nullProto, flat) => {
          const o = build(
            keys.map((k, i) => [k, flat ? i : i % 2 === 0 ? [k] : { [k]: i }]),
            nullProto,
          );
          expect(canonicalJson(o)).toBe(oldCanonicalJson(o));
          expect(ratedRecordHash(o as unknown as RatedUsageRecord)).toBe(oldRatedRecordHash(o));
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it("on exactly 15, 16 and 17 keys in every rotation, reverse order included", () => {
    for (const n of [15, 16, 17]) {
      const keys = HOSTILE_KEYS.slice(0, n);
      for (let r = 0; r < n; r++) {
        for (const order of [keys, [...keys].reverse()]) {
          const rotated = [...order.slice(r), ...order.slice(0, r)];
          const o = build(
            rotated.map((k, i) => [k, i]),
            false,
          );
          expect(canonicalJson(o)).toBe(oldCanonicalJson(o));
          expect(ratedRecordHash(o as unknown as RatedUsageRecord)).toBe(oldRatedRecordHash(o));
        }
      }
    }
  });

  it("on arbitrary nested values", () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(oldCanonicalJson(v));
        if (v !== null && typeof v === "object" && !Array.isArray(v))
          expect(ratedRecordHash(v as RatedUsageRecord)).toBe(oldRatedRecordHash(v));
      }),
      { numRuns: 5_000 },
    );
  });
});

describe("tokenGroupsOf: same sums, same errors as before 87cf995", () => {
  const MAX = Number.MAX_SAFE_INTEGER;
  const quantity = fc.oneof(
    fc.integer({ min: -MAX, max: MAX }),
    fc.constantFrom(0, -0, 1, -1, MAX, MAX - 1, -MAX, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 52),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5, 1e21),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    fc.constantFrom("5", "-5", "", " 7 ", "1e3", "x", "9007199254740993", true, false, null, undefined),
  );
  const meters = fc.dictionary(fc.constantFrom(...TOKEN_METERS), quantity) as fc.Arbitrary<MeterSet>;

  it("for any quantities: numbers, bigints, strings, booleans, null, non-integers", () => {
    fc.assert(
      fc.property(meters, (m) => {
        expect(outcome(() => tokenGroupsOf(m))).toEqual(outcome(() => oldTokenGroupsOf(m)));
      }),
      { numRuns: 5_000 },
    );
  });

  it("adds bigint quantities (an adapter's BIGINT column) as the bigint sums did", () => {
    const m = {
      input_tokens: 5n,
      audio_input_tokens: 7,
      output_tokens: 3,
      reasoning_tokens: 2n,
    } as unknown as MeterSet;
    expect(tokenGroupsOf(m)).toEqual(oldTokenGroupsOf(m));
    expect(tokenGroupsOf(m).inputTokens).toBe(12n);
    expect(tokenGroupsOf(m).outputTokens).toBe(5n);
  });

  it("reads each meter once, as the bigint sums did", () => {
    let reads = 0;
    const m = {} as Record<string, unknown>;
    Object.defineProperty(m, "input_tokens", {
      enumerable: true,
      get: () => {
        reads++;
        return 1;
      },
    });
    Object.defineProperty(m, "audio_input_tokens", {
      enumerable: true,
      get: () => {
        reads++;
        return "2";
      },
    });
    tokenGroupsOf(m as MeterSet);
    const now = reads;
    reads = 0;
    oldTokenGroupsOf(m as MeterSet);
    expect(now).toBe(reads);
  });
});
