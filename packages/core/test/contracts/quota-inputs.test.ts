/**
 * The quota stores' zod-free checks (`isQuotaName`, `isQuotaUnits`, `isHoldTtlMs`, and the
 * reserve request's pre-check) against their schemas: each accepts exactly what its schema
 * accepts, the schema returns such a value unchanged, and whatever they refuse gets the
 * schema's error, naming the field, from the in-memory store.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  isQuotaName,
  isQuotaUnits,
  QuotaActualSchema,
  QuotaAmountSchema,
  QuotaLimitSchema,
  QuotaNameSchema,
} from "../../src/contracts/inputs.js";
import {
  HoldTtlSchema,
  isHoldTtlMs,
  isReserveRequest,
  parseReserveRequest,
  ReserveRequestSchema,
} from "../../src/contracts/reserve-request.js";
import { LatchValidationError } from "../../src/errors/index.js";
import { MemoryQuotaReservator } from "../../src/index.js";
import { parseWith } from "../../src/schemas/parse.js";

type Plain = Record<string, unknown>;

/** Characters that matter: plain, 2-byte, astral pairs, and the ones a name refuses alone. */
const unit = fc.constantFrom("a", "-", " ", "é", "😀", "\u0000", "\uD800", "\uDC00", "\uFFFF");
const strings = fc.oneof(
  fc.string({ unit, maxLength: 300 }),
  fc.string({ maxLength: 300 }),
  fc.constantFrom("", "a", "x".repeat(256), "x".repeat(257), "😀".repeat(128), `${"😀".repeat(128)}a`),
  fc.constantFrom("a\u0000b", "\uD800", "a\uDC00", "\uDE00\uD83D", "\uD83D\uDE00"),
);
const numbers = fc.oneof(
  fc.integer({ min: -3, max: 3 }),
  fc.integer(),
  fc.double(),
  fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  fc.constantFrom(
    -0,
    0,
    1,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    1e21,
    1.5,
    Number.MAX_SAFE_INTEGER,
    Number.MAX_SAFE_INTEGER + 1,
    -Number.MAX_SAFE_INTEGER,
    2_147_483_647,
    2_147_483_648,
    Number.MIN_VALUE,
  ),
);
const values = fc.oneof(
  strings,
  numbers,
  fc.anything(),
  fc.constantFrom(null, undefined, "1", 1n, new Number(1), new String("a"), ["a"], Symbol.for("a")),
);

/** `check` is the schema exactly: the same verdict on every value, and the schema returns it unchanged. */
function exactly(check: (value: unknown) => boolean, schema: { safeParse(value: unknown): unknown }) {
  fc.assert(
    fc.property(values, (value) => {
      const parsed = schema.safeParse(value) as { success: boolean; data?: unknown };
      expect([value, check(value)]).toEqual([value, parsed.success]);
      if (parsed.success) expect(Object.is(parsed.data, value)).toBe(true);
    }),
    { numRuns: 5_000 },
  );
}

describe("the quota stores' checks without zod", () => {
  it("isQuotaName is QuotaNameSchema (property)", () => exactly(isQuotaName, QuotaNameSchema));
  it("isQuotaUnits(·, 1) is QuotaAmountSchema (property)", () =>
    exactly((v) => isQuotaUnits(v, 1), QuotaAmountSchema));
  it("isQuotaUnits(·, 0) is QuotaActualSchema and QuotaLimitSchema (property)", () => {
    exactly((v) => isQuotaUnits(v, 0), QuotaActualSchema);
    exactly((v) => isQuotaUnits(v, 0), QuotaLimitSchema);
  });
  it("isHoldTtlMs is HoldTtlSchema (property)", () => exactly(isHoldTtlMs, HoldTtlSchema));

  it("agree with the schemas at the bounds", () => {
    for (const [value, name] of [
      ["a", true],
      ["x".repeat(256), true],
      ["😀".repeat(128), true],
      ["", false],
      ["x".repeat(257), false],
      ["a\u0000", false],
      ["\uD800", false],
    ] as const) {
      expect([value, isQuotaName(value)]).toEqual([value, name]);
      expect([value, QuotaNameSchema.safeParse(value).success]).toEqual([value, name]);
    }
    for (const [value, amount, actual] of [
      [1, true, true],
      [0, false, true],
      [-0, false, true], // zod takes -0 as ≥ 0, and returns it as given
      [Number.MAX_SAFE_INTEGER, true, true],
      [Number.MAX_SAFE_INTEGER + 1, false, false],
      [1e21, false, false],
      [Number.NaN, false, false],
      [0.5, false, false],
    ] as const) {
      expect([value, isQuotaUnits(value, 1), isQuotaUnits(value, 0)]).toEqual([value, amount, actual]);
      expect([
        value,
        QuotaAmountSchema.safeParse(value).success,
        QuotaActualSchema.safeParse(value).success,
      ]).toEqual([value, amount, actual]);
    }
  });
});

describe("the reserve request's pre-check (parseReserveRequest)", () => {
  const name = fc.oneof(
    { arbitrary: fc.constantFrom("h-1", "acme", "x".repeat(256), "😀"), weight: 8 },
    { arbitrary: strings, weight: 1 },
    { arbitrary: fc.constantFrom(undefined, null, 1), weight: 1 },
  );
  const units = (max: number) =>
    fc.oneof(
      { arbitrary: fc.integer({ min: 1, max }), weight: 8 },
      { arbitrary: numbers, weight: 1 },
      { arbitrary: fc.constantFrom(undefined, "1", null), weight: 1 },
    );
  const wraps: Record<string, (value: Plain) => unknown> = {
    plain: (v) => v,
    reversed: (v) => Object.fromEntries(Object.entries(v).reverse()),
    nullPrototype: (v) => Object.assign(Object.create(null), v),
    classInstance: (v) => Object.assign(new (class Request {})(), v),
    heir: (v) => Object.create(v),
    nullPrototypeArray: (v) => Object.assign(Object.setPrototypeOf([], null), v),
    array: (v) => Object.assign([], v),
    arrayProxy: (v) => new Proxy(Object.assign([], v), { getPrototypeOf: () => Object.prototype }),
    extraKey: (v) => ({ ...v, extra: 1 }),
    symbolKey: (v) => ({ ...v, [Symbol("s")]: 1 }),
    protoKey: (v) => Object.assign(JSON.parse('{"__proto__": 1}'), v),
    hiddenExtra: (v) => Object.defineProperty({ ...v }, "extra", { value: 1, enumerable: false }),
    hiddenTtl: (v) => {
      const { ttlMs, ...rest } = v;
      return Object.defineProperty(rest, "ttlMs", { value: ttlMs, enumerable: false });
    },
    // As many enumerable keys as members, one of them unknown: zod refuses the unknown one.
    hiddenTtlAndExtra: ({ ttlMs, ...rest }) =>
      Object.defineProperty({ ...rest, extra: 1 }, "ttlMs", { value: ttlMs, enumerable: false }),
    missingAccount: ({ account: _, ...rest }) => rest,
    // A Proxy whose `has` denies a member its `get` gives: zod finds it absent and refuses it.
    ...Object.fromEntries(
      ["holdId", "account", "amount", "ttlMs"].map((key) => [
        `hasDenies_${key}`,
        (v: Plain) => new Proxy({ ...v }, { has: (t, k) => k !== key && Reflect.has(t, k) }),
      ]),
    ),
  };
  const makers = fc
    .tuple(
      fc.record({
        holdId: name,
        account: name,
        amount: units(Number.MAX_SAFE_INTEGER),
        ttlMs: units(2_147_483_647),
      }),
      fc.oneof(
        { arbitrary: fc.constant("plain"), weight: 6 },
        { arbitrary: fc.constantFrom(...Object.keys(wraps)), weight: 4 },
      ),
    )
    .map(
      ([value, how]) =>
        () =>
          (wraps[how] as (v: Plain) => unknown)(value),
    );

  it("takes only what ReserveRequestSchema takes, and gives the schema's output, key order included (property)", () => {
    let accepted = 0;
    fc.assert(
      fc.property(makers, (make) => {
        const fast = isReserveRequest(make());
        const parsed = ReserveRequestSchema.safeParse(make());
        if (!fast) return;
        accepted++;
        expect(parsed.success).toBe(true);
        const out = parseReserveRequest(make());
        expect(Object.keys(out)).toEqual(Object.keys(parsed.data as Plain));
        expect(Object.keys(out)).toEqual(["holdId", "account", "amount", "ttlMs"]);
        expect(JSON.stringify(out)).toBe(JSON.stringify(parsed.data));
      }),
      { numRuns: 5_000 },
    );
    expect(accepted).toBeGreaterThan(1_000);
  });

  it("takes every plainly valid request (property)", () => {
    const valid = fc.record({
      holdId: fc.string({ minLength: 1, maxLength: 256 }),
      account: fc.string({ minLength: 1, maxLength: 256 }),
      amount: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      ttlMs: fc.integer({ min: 1, max: 2_147_483_647 }),
    });
    fc.assert(
      fc.property(valid, fc.boolean(), (value, nullPrototype) => {
        const input = nullPrototype ? Object.assign(Object.create(null), value) : value;
        expect(ReserveRequestSchema.safeParse(input).success).toBe(true);
        expect(isReserveRequest(input)).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it("sends an array, whatever its prototype, to the schema, which refuses it", () => {
    const request = { holdId: "h", account: "acme", amount: 1, ttlMs: 1_000 };
    for (const value of [
      Object.assign(Object.setPrototypeOf([], null), request),
      new Proxy(Object.assign([], request), { getPrototypeOf: () => Object.prototype }),
    ]) {
      expect(isReserveRequest(value)).toBe(false);
      expect(() => parseReserveRequest(value)).toThrow(LatchValidationError);
    }
  });

  it("reads each member once and copies what it checked (an accessor cannot slip a second answer past it)", () => {
    const reads = { holdId: 0, account: 0, amount: 0, ttlMs: 0 };
    const answers = { holdId: ["h", ""], account: ["acme", "\uD800"], amount: [5, -5], ttlMs: [1_000, 0] };
    const request = {};
    for (const key of Object.keys(reads) as (keyof typeof reads)[]) {
      Object.defineProperty(request, key, {
        enumerable: true,
        get: () => answers[key][Math.min(reads[key]++, 1)],
      });
    }
    const parsed = parseReserveRequest(request);
    expect(reads).toEqual({ holdId: 1, account: 1, amount: 1, ttlMs: 1 });
    expect(parsed).toEqual({ holdId: "h", account: "acme", amount: 5, ttlMs: 1_000 });
    expect(parsed === request).toBe(false); // (`not.toBe` would read the accessors again)
  });
});

describe("MemoryQuotaReservator: the schema's errors for what the checks refuse", () => {
  /** The issues `call` throws (a LatchValidationError). */
  async function issuesOf(call: () => Promise<unknown>) {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LatchValidationError);
    return {
      subject: (error as LatchValidationError).subject,
      issues: (error as LatchValidationError).issues,
    };
  }

  it("names holdId, actual, account and amount as before", async () => {
    const quota = new MemoryQuotaReservator();
    await quota.setLimit("acme", 100);
    await quota.reserve({ holdId: "h", account: "acme", amount: 10, ttlMs: 60_000 });
    const holdId = (message: string) => [{ path: "holdId", message }];
    expect(await issuesOf(() => quota.commit("", 1))).toEqual({
      subject: "QuotaReservator.commit",
      issues: holdId("must not be empty"),
    });
    expect(await issuesOf(() => quota.void("a\u0000"))).toEqual({
      subject: "QuotaReservator.void",
      issues: holdId("must not contain U+0000 or an unpaired surrogate"),
    });
    expect(await issuesOf(() => quota.commit(7 as unknown as string, 1))).toEqual({
      subject: "QuotaReservator.commit",
      issues: holdId("expected a string"),
    });
    expect(await issuesOf(() => quota.commit("x".repeat(257), 1))).toEqual({
      subject: "QuotaReservator.commit",
      issues: holdId("at most 256 characters"),
    });
    for (const actual of [-1, -0.5, 0.5, Number.NaN, 1e21, "1", null]) {
      let expected: unknown;
      try {
        parseWith(QuotaActualSchema, actual, "QuotaReservator.commit", "actual");
      } catch (error) {
        expected = error;
      }
      expect(await issuesOf(() => quota.commit("h", actual as number))).toEqual({
        subject: "QuotaReservator.commit",
        issues: (expected as LatchValidationError).issues,
      });
      expect((expected as LatchValidationError).issues[0]).toEqual({
        path: "actual",
        message: "expected a safe integer ≥ 0",
      });
    }
    expect(await issuesOf(() => quota.check("\uD800", 1))).toEqual({
      subject: "QuotaAuthorizer.check",
      issues: [{ path: "account", message: "must not contain U+0000 or an unpaired surrogate" }],
    });
    expect(await issuesOf(() => quota.check("acme", 0))).toEqual({
      subject: "QuotaAuthorizer.check",
      issues: [{ path: "amount", message: "expected a safe integer > 0" }],
    });
    expect(await issuesOf(() => quota.balance(""))).toEqual({
      subject: "QuotaReservator.balance",
      issues: [{ path: "account", message: "must not be empty" }],
    });
    // The valid ones go through unchanged: -0 is a valid actual, as zod takes it.
    expect(await quota.commit("h", -0)).toEqual({ committed: -0 });
    expect(await quota.check("acme", 1)).toEqual({ allowed: true, remaining: 100 });
    expect((await quota.balance("acme")).spent).toBe(0);
  });
});
