/**
 * `fastParseReserve` (a quota `latch.reserve()`'s pre-check) against `ReserveSchema`: whatever
 * it accepts, the schema accepts, with the same output (keys, key order, values, `-0` and
 * `undefined` members included); every plainly valid request is accepted; each member is read
 * once; and a bad request still gets the schema's error from `reserve()`.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchValidationError } from "../../src/errors/index.js";
import { fastParseReserve } from "../../src/facade/fast-reserve.js";
import { createQuotaHolds } from "../../src/facade/quota-holds.js";
import { ReserveSchema } from "../../src/facade/schemas.js";
import { MemoryQuotaReservator, MemoryRatedRecordStore } from "../../src/index.js";
import { isWellFormedText } from "../../src/schemas/identity.js";
import { parseWith } from "../../src/schemas/parse.js";
import { flipping } from "../hostile.js";

type Plain = Record<string, unknown>;

/** The pre-check's value is the schema's, exactly: same keys in the same order, same values (`Object.is`). */
function sameOutput(fast: Plain, parsed: Plain): void {
  expect(Object.keys(fast)).toEqual(Object.keys(parsed));
  expect(JSON.stringify(fast)).toBe(JSON.stringify(parsed));
  for (const key of Object.keys(parsed))
    expect([key, Object.is(fast[key], parsed[key])]).toEqual([key, true]);
}

/**
 * Whatever the pre-check accepts, the schema accepts, with the same output. True when it
 * accepted. `make` gives each its own copy of the input (an accessor counts its reads).
 */
function agrees(make: unknown): boolean {
  const fresh = typeof make === "function" ? (make as () => unknown) : () => make;
  const input = fresh();
  const fast = fastParseReserve(input);
  const parsed = ReserveSchema.safeParse(fresh());
  if (fast === undefined) return false;
  expect(parsed.success).toBe(true);
  sameOutput(fast as Plain, parsed.data as Plain);
  expect(Object.is(fast, input)).toBe(false); // a copy: the caller's object is not kept
  return true;
}

const pick = (...values: unknown[]) => fc.constantFrom(...values);
/** Mostly `good`, sometimes `bad`: most generated requests are valid, each member can break. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: bad, weight: 1 });

/** Characters that matter: plain, 2-byte, astral pairs, and the ones a name refuses alone. */
const unit = fc.constantFrom("a", "Z", "-", " ", "é", "😀", "\u0000", "\uD800", "\uDC00", "\uFFFF");
const goodName = fc.oneof(
  pick("a", "acme", "tenant-7", "x".repeat(256), "é", "\uD83D\uDE00", "😀".repeat(128)),
  fc.string({ minLength: 1, maxLength: 40 }),
);
const name = mostly(
  goodName,
  fc.oneof(
    pick(
      "",
      "x".repeat(257),
      "😀".repeat(128) + "a",
      "a\u0000b",
      "\uD800",
      "a\uDC00",
      "\uDE00\uD83D",
      7,
      null,
    ),
    pick(undefined, {}, ["a"], new String("a"), Symbol.for("a")),
    fc.string({ unit, maxLength: 300 }),
  ),
);
const hostileNumber = pick(
  0,
  -0,
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1e21,
  Number.MAX_SAFE_INTEGER + 1,
  2 ** 53,
  "5",
  5n,
  null,
  undefined,
  new Number(5),
  true,
);
const amount = mostly(
  fc.oneof(pick(1, 2, Number.MAX_SAFE_INTEGER, 1e15), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  fc.oneof(hostileNumber, fc.double(), fc.integer({ min: -5, max: 0 })),
);
const ttlMs = mostly(
  fc.oneof(pick(1, 60_000, 2_147_483_647), fc.integer({ min: 1, max: 2_147_483_647 })),
  fc.oneof(hostileNumber, pick(2_147_483_648, 2 ** 31 + 0.5), fc.double()),
);

/** A request: members in any order, optional ones absent, present or present as `undefined`. */
const members = fc
  .tuple(
    fc.record(
      { account: name, amount, holdId: name, ttlMs },
      { requiredKeys: [] }, // a required member may be missing too
    ),
    fc.subarray(["holdId", "ttlMs"]),
    fc.integer({ min: 0, max: 8 }), // 0: account and amount are kept; else one may go
    fc.boolean(),
  )
  .map(([r, asUndefined, keep, reverse]) => {
    const out: Plain = { account: r.account ?? "acme", amount: r.amount ?? 1, ...r };
    if (keep === 1) delete out.account;
    if (keep === 2) delete out.amount;
    for (const key of asUndefined) if (!(key in r)) out[key] = undefined;
    return reverse ? Object.fromEntries(Object.entries(out).reverse()) : out;
  });

/** What a caller may wrap a request in: each sends the schema something other than a plain object literal. */
const wraps: Record<string, (value: Plain) => unknown> = {
  plain: (v) => v,
  nullPrototype: (v) => Object.assign(Object.create(null), v),
  classInstance: (v) => Object.assign(new (class Request {})(), v),
  heir: (v) => Object.create(v),
  inheritsAccount: (v) => {
    const { account, ...rest } = v;
    return Object.assign(Object.create({ account }), rest);
  },
  nullPrototypeArray: (v) => Object.assign(Object.setPrototypeOf([], null), v),
  array: (v) => Object.assign([], v),
  proxy: (v) => new Proxy(v, {}),
  arrayProxy: (v) => new Proxy(Object.assign([], v), { getPrototypeOf: () => Object.prototype }),
  extraKey: (v) => ({ ...v, extra: 1 }),
  featureId: (v) => ({ ...v, featureId: "f" }),
  symbolKey: (v) => ({ ...v, [Symbol("s")]: 1 }),
  protoKey: (v) => Object.assign(JSON.parse('{"__proto__": 1}'), v),
  protoKeyHidden: (v) => Object.defineProperty({ ...v }, "__proto__", { value: 1, enumerable: false }),
  getter: (v) => flipping(v, "amount", v.amount, v.amount, 9),
  flippingAmount: (v) => flipping(v, "amount", v.amount, -1),
  flippingAccount: (v) => flipping(v, "account", v.account, ""),
  hiddenHoldId: (v) => Object.defineProperty({ ...v }, "holdId", { value: "h", enumerable: false }),
  hiddenBadHoldId: (v) => Object.defineProperty({ ...v }, "holdId", { value: "", enumerable: false }),
  hiddenExtra: (v) => Object.defineProperty({ ...v }, "extra", { value: 1, enumerable: false }),
  // As many enumerable keys as members read, one of them unknown: zod refuses the unknown one.
  hiddenAmountAndExtra: ({ amount, ...rest }) =>
    Object.defineProperty({ ...rest, extra: 1 }, "amount", { value: amount, enumerable: false }),
  frozen: (v) => Object.freeze({ ...v }),
  // A Proxy whose `has` denies a member its `get` gives: zod finds it absent (a required one
  // refused, an optional one left out); or claims one it lacks (present as `undefined`).
  ...Object.fromEntries(
    ["account", "amount", "holdId", "ttlMs"].flatMap((key) => [
      [
        `hasDenies_${key}`,
        (v: Plain) => new Proxy({ ...v }, { has: (t, k) => k !== key && Reflect.has(t, k) }),
      ],
      [
        `hasClaims_${key}`,
        (v: Plain) => new Proxy({ ...v }, { has: (t, k) => k === key || Reflect.has(t, k) }),
      ],
    ]),
  ),
};
const wrapped = fc
  .tuple(members, mostly(pick("plain"), fc.constantFrom(...Object.keys(wraps))))
  // A maker, not the value: the pre-check and the schema each read a copy of their own.
  .map(
    ([value, how]) =>
      () =>
        (wraps[how as string] as (v: Plain) => unknown)(value),
  );

const inputs = fc.oneof(
  { arbitrary: wrapped, weight: 20 },
  { arbitrary: fc.anything().map((value) => () => value), weight: 1 },
  { arbitrary: pick(null, undefined, "acme", 5, [], new Map()).map((value) => () => value), weight: 1 },
);

describe("fastParseReserve (a quota reserve()'s pre-check)", () => {
  it("gives exactly the schema's output: schema key order, absent stays absent, `undefined` stays present", () => {
    const cases: [Plain, string[]][] = [
      [{ account: "acme", amount: 5 }, ["account", "amount"]],
      [{ amount: 5, account: "acme" }, ["account", "amount"]],
      [{ ttlMs: 1, holdId: "h", amount: 5, account: "acme" }, ["account", "amount", "holdId", "ttlMs"]],
      [{ account: "acme", amount: 5, holdId: undefined }, ["account", "amount", "holdId"]],
      [{ ttlMs: undefined, account: "acme", amount: 5 }, ["account", "amount", "ttlMs"]],
      [
        { holdId: undefined, ttlMs: undefined, account: "acme", amount: 5 },
        ["account", "amount", "holdId", "ttlMs"],
      ],
      [Object.assign(Object.create(null), { account: "a", amount: 1 }), ["account", "amount"]],
    ];
    for (const [input, keys] of cases) {
      expect(agrees(input)).toBe(true);
      expect(Object.keys(fastParseReserve(input) as Plain)).toEqual(keys);
      expect(Object.keys(ReserveSchema.parse(input))).toEqual(keys);
    }
    // A symbol key: a strict object skips it, and so does the copy.
    expect(agrees({ account: "acme", amount: 5, [Symbol("s")]: 1 })).toBe(true);
    // The bounds exactly.
    for (const input of [
      {
        account: "x".repeat(256),
        amount: Number.MAX_SAFE_INTEGER,
        holdId: "😀".repeat(128),
        ttlMs: 2_147_483_647,
      },
      { account: "a", amount: 1, holdId: "h", ttlMs: 1 },
    ])
      expect(agrees(input)).toBe(true);
  });

  it("accepts only what the schema accepts, with the same value in the same shape (property)", () => {
    let accepted = 0;
    let valid = 0;
    fc.assert(
      fc.property(inputs, (value) => {
        if (agrees(value)) accepted++;
        if (ReserveSchema.safeParse((value as () => unknown)()).success) valid++;
      }),
      { numRuns: 10_000 },
    );
    // The generator reaches the accepting side often enough for the comparison to mean something.
    expect(accepted).toBeGreaterThan(2_000);
    expect(accepted).toBeLessThanOrEqual(valid);
  });

  it("accepts every plainly valid request: a plain object literal, well-formed names (property)", () => {
    const valid = fc
      .tuple(
        goodName,
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        fc.option(goodName, { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 2_147_483_647 }), { nil: undefined }),
        fc.subarray(["holdId", "ttlMs"]),
        fc.boolean(),
      )
      .map(([account, amount, holdId, ttlMs, keep, nullPrototype]) => {
        const out: Plain = nullPrototype ? Object.create(null) : {};
        Object.assign(out, { amount, account });
        if (holdId !== undefined || keep.includes("holdId")) out.holdId = holdId;
        if (ttlMs !== undefined || keep.includes("ttlMs")) out.ttlMs = ttlMs;
        return out;
      })
      .filter(
        (value) =>
          ReserveSchema.safeParse(value).success &&
          isWellFormedText(value.account as string) &&
          isWellFormedText((value.holdId as string | undefined) ?? "a"),
      );
    fc.assert(
      fc.property(valid, (value) => {
        expect(agrees(value)).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });

  it("sends the hostile and the unusual to the schema", () => {
    const base = { account: "acme", amount: 5 };
    const unusual: unknown[] = [
      ...Object.entries(wraps)
        // Taken as plainly valid: a plain object (a Proxy with no traps is one), an accessor read once.
        .filter(
          ([how]) =>
            // The `has` Proxies: what zod makes of them is pinned by the property test and below.
            !how.startsWith("has") &&
            ![
              "plain",
              "nullPrototype",
              "symbolKey",
              "frozen",
              "getter",
              "proxy",
              "flippingAmount",
              "flippingAccount",
              // Not enumerable: zod's for…in does not see them either.
              "protoKeyHidden",
              "hiddenExtra",
            ].includes(how),
        )
        .map(([, wrap]) => wrap({ ...base })),
      { ...base, account: "a\u0000b" }, // the schema takes it, the store refuses it: the schema path either way
      { ...base, account: "\uD800" },
      { ...base, holdId: "\uDC00" },
      { ...base, amount: -0 },
      { ...base, amount: 1e21 },
      { ...base, amount: Number.NaN },
      { ...base, ttlMs: -0 },
      { ...base, ttlMs: 2_147_483_648 },
      { ...base, holdId: null },
      { account: "acme" },
      { amount: 5 },
      { ...base, account: undefined },
    ];
    for (const value of unusual) expect([value, fastParseReserve(value)]).toEqual([value, undefined]);
  });

  it("takes a member a Proxy's `has` denies as absent, as the schema does", () => {
    const hiding = (value: Plain, hidden: string) =>
      new Proxy(value, { has: (target, key) => key !== hidden && Reflect.has(target, key) });
    // Required: the schema refuses it (naming it), so the pre-check leaves it to the schema.
    for (const key of ["account", "amount"]) {
      const input = () => hiding({ account: "acme", amount: 5 }, key);
      expect(ReserveSchema.safeParse(input()).success).toBe(false);
      expect(fastParseReserve(input())).toBeUndefined();
    }
    // Optional (and not enumerated): the schema leaves it out, the idempotent holdId with it.
    const hidden = () =>
      new Proxy(
        { account: "acme", amount: 5, holdId: "h-1" },
        {
          has: (target, key) => key !== "holdId" && Reflect.has(target, key),
          ownKeys: (target) => Reflect.ownKeys(target).filter((key) => key !== "holdId"),
        },
      );
    expect(ReserveSchema.parse(hidden())).toEqual({ account: "acme", amount: 5 });
    expect(agrees(hidden)).toBe(true);
  });

  it("reads each member once, and copies the values it checked", () => {
    const reads: Record<string, number> = {};
    const counted: Plain = {};
    for (const [key, value] of Object.entries({ account: "acme", amount: 5, holdId: "h", ttlMs: 10 })) {
      reads[key] = 0;
      Object.defineProperty(counted, key, {
        enumerable: true,
        get: () => {
          (reads[key] as number)++;
          return value;
        },
      });
    }
    expect(fastParseReserve(counted)).toEqual({ account: "acme", amount: 5, holdId: "h", ttlMs: 10 });
    expect(reads).toEqual({ account: 1, amount: 1, holdId: 1, ttlMs: 1 });
    // An accessor that answers differently on a later read: what comes out is what was checked.
    const base = { account: "acme", amount: 5, holdId: "h", ttlMs: 10 };
    for (const [key, bad] of [
      ["account", ""],
      ["amount", -1],
      ["holdId", "\uD800"],
      ["ttlMs", 0],
    ] as const) {
      const fast = fastParseReserve(flipping(base, key, base[key], bad));
      expect(fast).toEqual(base);
      expect(ReserveSchema.safeParse(fast).success).toBe(true);
    }
  });
});

describe("reserve() with the pre-check: same holds, same errors", () => {
  async function holdsOf() {
    const quota = new MemoryQuotaReservator();
    await quota.setLimit("acme", 10_000);
    return createQuotaHolds({
      quota,
      rated: new MemoryRatedRecordStore(),
      retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
      warn: () => {},
      quotaUnits: () => 1,
      holdTtlMs: 60_000,
    });
  }

  it("throws the schema's invalid_input for every request the schema refuses", async () => {
    const holds = await holdsOf();
    const bad: unknown[] = [
      null,
      "acme",
      [],
      {},
      { account: "acme" },
      { account: "", amount: 5 },
      { account: "x".repeat(257), amount: 5 },
      { account: "acme", amount: 0 },
      { account: "acme", amount: -0 },
      { account: "acme", amount: 1.5 },
      { account: "acme", amount: 1e21 },
      { account: "acme", amount: Number.NaN },
      { account: "acme", amount: "5" },
      { account: "acme", amount: 5, holdId: "" },
      { account: "acme", amount: 5, ttlMs: 0 },
      { account: "acme", amount: 5, ttlMs: 2_147_483_648 },
      { account: "acme", amount: 5, extra: 1 },
      JSON.parse('{"account": "acme", "amount": 5, "__proto__": 1}'),
      Object.assign(Object.setPrototypeOf([], null), { account: "acme", amount: 5 }),
    ];
    for (const request of bad) {
      let expected: unknown;
      try {
        parseWith(ReserveSchema, request, "reserve request");
      } catch (error) {
        expected = error;
      }
      expect(expected).toBeInstanceOf(LatchValidationError);
      const thrown = await holds.reserve(request).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(thrown).toBeInstanceOf(LatchValidationError);
      expect((thrown as LatchValidationError).issues).toEqual((expected as LatchValidationError).issues);
      expect((thrown as Error).message).toBe((expected as Error).message);
    }
  });

  it("grants a plainly valid request as before, holdId and ttlMs taken as given", async () => {
    const holds = await holdsOf();
    const hold = await holds.reserve({ amount: 100, account: "acme", holdId: "h-1", ttlMs: 1_000 });
    expect(hold).toEqual({
      granted: true,
      kind: "quota",
      holdId: "h-1",
      account: "acme",
      amount: 100,
      remaining: 9_900,
    });
    const generated = await holds.reserve({ account: "acme", amount: 100, holdId: undefined });
    expect(generated.granted).toBe(true);
    expect(generated.holdId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
