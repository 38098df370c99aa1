import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalHash, observationHash } from "../../src/contracts/hashing.js";
import { parseReserveRequest } from "../../src/contracts/reserve-request.js";
import { LatchValidationError } from "../../src/errors/index.js";
import { fastParseReserve } from "../../src/facade/fast-reserve.js";
import { fastParseProviderUsage } from "../../src/facade/provider-usage-fast.js";
import { linkHold } from "../../src/facade/quota-reconcile.js";
import { fastParse, parseFast } from "../../src/normalize/fast-read.js";
import { OpenAIChatUsageSchema } from "../../src/normalize/openai-chat.js";
import { fastParseObservation } from "../../src/observation/fast-parse.js";
import { isParsedObservation, parseObservation } from "../../src/observation/parse.js";
import { UsageObservationSchema } from "../../src/schemas/observation.js";
import { IsoTimestampSchema, isoTimestampMs, usualTimestamp } from "../../src/schemas/time.js";
import { flipping } from "../hostile.js";
import { observation } from "../support.js";

/** Keys in order, all the way down: the pre-check must give the schema's shape exactly. */
function shape(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  return Object.entries(value).map(([k, v]) => [k, shape(v)]);
}

/** Whatever the pre-check accepts, the schema accepts, with the same output. True when it accepted. */
function agrees(input: unknown): boolean {
  const fast = fastParseObservation(input);
  if (fast === undefined) return false;
  const parsed = UsageObservationSchema.safeParse(input);
  expect(parsed.success).toBe(true);
  expect(shape(fast)).toEqual(shape(parsed.data));
  expect(Object.is(fast, input)).toBe(false); // a copy: the caller's object is not kept
  return true;
}

const pick = (...values: unknown[]) => fc.constantFrom(...values);
const keys = (...values: string[]) => fc.constantFrom(...values);
/** Mostly `good`, sometimes `bad`: most generated observations are valid, each field can break. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: good, weight: 30 }, { arbitrary: bad, weight: 1 });
const text = mostly(
  pick("a", "acme", "x".repeat(256), "é", "\uD83D\uDE00"),
  fc.oneof(pick("x".repeat(257), "x".repeat(512), "x".repeat(513), "", "a\u0000b", "\uD800", 7), fc.string()),
);
const timestamp = mostly(
  pick(
    "2026-03-01T12:00:00Z",
    "2026-03-01T12:00:01.123456789Z",
    "2024-02-29T00:00:00Z",
    "1970-01-01T00:00:00Z",
  ),
  pick(
    "2026-02-29T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "2026-03-01T24:00:00Z",
    "2026-03-01T12:00Z",
    "2026-03-01T12:00:00+00:00",
    "2026-13-01T00:00:00Z",
    "2026-03-01t12:00:00z",
  ),
);
/** An object with `required` members (each may go missing) and optional ones, plus a stray key now and then. */
const object = (
  required: Record<string, fc.Arbitrary<unknown>>,
  optional: Record<string, fc.Arbitrary<unknown>>,
) =>
  fc
    .tuple(
      fc.record(required, { requiredKeys: [] }),
      fc.record(optional, { requiredKeys: [] }),
      mostly(
        fc.constant({}),
        fc.oneof(pick({ extra: "x" }, { tenantId: undefined }), fc.constant({ kind: undefined })),
      ),
      fc.integer({ min: 0, max: 60 }),
    )
    .map(([req, opt, stray, drop]) => {
      const out: Record<string, unknown> = { ...req, ...opt, ...(stray as object) };
      if (drop === 0) delete out[Object.keys(out)[0] as string];
      return out;
    });
const meters = mostly(
  fc.dictionary(
    keys("input_tokens", "output_tokens", "cached_input_tokens", "custom:search"),
    fc.nat(10_000),
  ),
  fc.oneof(
    fc.dictionary(
      keys("input_tokens", "custom:", "bogus", "__proto__"),
      fc.oneof(fc.integer({ min: -2, max: 3 }), pick(1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, "1", -0)),
    ),
    pick([], null, Object.setPrototypeOf([], null)),
  ),
);

/** Attributes: mostly valid labels, sometimes each of the schema's refusals. */
const attributes = mostly(
  fc.dictionary(keys("team", "provider_response_id", "é", "k".repeat(64)), text),
  fc.oneof(
    fc.dictionary(
      keys("", "sys.x", "k".repeat(65), "é".repeat(33), "a\u0000b", "\uD800", "__proto__", "team"),
      fc.oneof(text, pick(1, null, undefined, "v".repeat(257), "é".repeat(129), "\uDC00")),
    ),
    fc.dictionary(fc.string(), fc.string(), { minKeys: 60, maxKeys: 70 }),
    pick(null, [], "x", new Map(), Object.setPrototypeOf(["a"], null), Object.setPrototypeOf([], null)),
  ),
);

const input = object(
  {
    eventId: text,
    subject: mostly(
      object(
        { tenantId: text },
        { orgId: text, projectId: text, apiKeyId: text, endUserId: text, feature: text },
      ),
      pick(null, "acme", []),
    ),
    meters,
    model: mostly(object({ billableModel: text }, { tier: text, vendor: text, region: text }), pick("m")),
    source: mostly(
      fc.oneof(
        pick({ kind: "provider_reported" }, { kind: "estimated" }),
        object({ kind: pick("corrected") }, { correctionOf: text }),
      ),
      object({ kind: pick("nope", "corrected", "estimated") }, { correctionOf: text }),
    ),
    outcome: mostly(
      fc.oneof(
        pick({ kind: "success" }, { kind: "timeout" }),
        object({ kind: pick("error") }, { code: text }),
      ),
      object({ kind: pick("failed", "error", "success") }, { code: text }),
    ),
    timing: object({ startedAt: timestamp, completedAt: timestamp }, {}),
  },
  {
    provider: mostly(object({ providerId: text }, {}), pick(undefined, null)),
    correlation: object(
      {},
      { requestId: text, parentEventId: text, holdId: text, holdFeatureId: text, holdLedgerId: text },
    ),
    attributes,
  },
);

describe("fastParseObservation (record()'s pre-check)", () => {
  it("accepts the usual observation and gives exactly the schema's output", () => {
    const obs = observation({ input_tokens: 10, output_tokens: 3 }, { correlation: { requestId: "r1" } });
    expect(agrees(obs)).toBe(true);
  });

  it("accepts only what the schema accepts, and gives the same value in the same shape", () => {
    let accepted = 0;
    let valid = 0;
    fc.assert(
      fc.property(input, (value) => {
        if (agrees(value)) accepted++;
        if (UsageObservationSchema.safeParse(value).success) valid++;
      }),
      { numRuns: 5_000 },
    );
    // The generator reaches the accepting side often enough for the comparison to mean something.
    expect(accepted).toBeGreaterThan(50);
    expect(accepted).toBeLessThanOrEqual(valid);
  });

  it("accepts attributes and gives the schema's output, in the caller's key order", () => {
    const base = observation({ input_tokens: 1 });
    expect(agrees({ ...base, attributes: { team: "a", provider_response_id: "chatcmpl-1", é: "ü" } })).toBe(
      true,
    );
    expect(agrees({ ...base, attributes: {} })).toBe(true);
    expect(agrees({ ...base, attributes: Object.assign(Object.create(null), { b: "1", a: "2" }) })).toBe(
      true,
    );
    // Bounds exactly at the schema's limits: 64-byte key, 256-byte value, 64 keys.
    const full = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "v"]));
    expect(agrees({ ...base, attributes: full })).toBe(true);
    expect(agrees({ ...base, attributes: { ["é".repeat(32)]: "é".repeat(128) } })).toBe(true);
    // One over each: the schema's message, not the pre-check.
    for (const bad of [
      { ...full, k64: "v" },
      { ["é".repeat(32) + "x"]: "v" },
      { k: `${"é".repeat(128)}x` },
      { "sys.x": "v" },
      { "": "v" },
      { k: "a\u0000b" },
      { "\uD800": "v" },
      { k: 1 },
    ]) {
      expect(fastParseObservation({ ...base, attributes: bad })).toBeUndefined();
      expect(UsageObservationSchema.safeParse({ ...base, attributes: bad }).success).toBe(false);
    }
  });

  it("drops a symbol key as the schema does (a strict object skips them)", () => {
    const base = observation({ input_tokens: 1 });
    expect(agrees({ ...base, [Symbol("s")]: 1, subject: { tenantId: "a", [Symbol("t")]: 2 } })).toBe(true);
  });

  it("sends anything unusual to the schema", () => {
    const base = observation({ input_tokens: 1 });
    const unusual: unknown[] = [
      { ...base, attributes: { team: "a", [Symbol("s")]: "b" } },
      { ...base, attributes: JSON.parse('{"__proto__": "x"}') },
      { ...base, attributes: Object.assign(new (class Labels {})(), { team: "a" }) },
      { ...base, attributes: undefined },
      { ...base, provider: undefined },
      { ...base, meters: { input_tokens: 1, [Symbol("s")]: 1 } },
      { ...base, meters: Object.assign(Object.create({ inherited: 1 }), { input_tokens: 1 }) },
      Object.assign(new (class Observation {})(), base),
      { ...base, timing: { startedAt: "2026-03-01T12:00:02Z", completedAt: "2026-03-01T12:00:01Z" } },
    ];
    for (const value of unusual) expect(fastParseObservation(value)).toBeUndefined();
  });
});

describe("fastParseObservation against hostile objects (adversarial review)", () => {
  /** Whatever the pre-check returns is a valid observation as it stands (checked, not re-read). */
  function returnsOnlyValid(input: unknown): void {
    const fast = fastParseObservation(input);
    if (fast === undefined) return;
    const again = UsageObservationSchema.safeParse(fast);
    expect(again.success).toBe(true);
    expect(shape(again.data)).toEqual(shape(fast));
  }

  it("copies exactly the member values it checked, even when an accessor answers differently later", () => {
    const base = observation({ input_tokens: 1 });
    for (const reads of [1, 2, 3]) {
      returnsOnlyValid(flipping(base, "eventId", "ok", "a\u0000b", reads));
      returnsOnlyValid(flipping(base, "eventId", "ok", "", reads));
      returnsOnlyValid({ ...base, source: flipping({}, "kind", "estimated", "bogus", reads) });
      returnsOnlyValid({
        ...base,
        source: flipping({ kind: "corrected" }, "correctionOf", "x", "\uD800", reads),
      });
      returnsOnlyValid({ ...base, outcome: flipping({ kind: "error" }, "code", "c", "", reads) });
      returnsOnlyValid({ ...base, outcome: flipping({}, "kind", "error", "success", reads) });
    }
  });

  it("copies exactly the attribute values it checked, and leaves a Proxy or hidden key to the schema's rules", () => {
    const base = observation({ input_tokens: 1 });
    for (const reads of [1, 2, 3]) {
      returnsOnlyValid({ ...base, attributes: flipping({ team: "a" }, "id", "ok", "a\u0000b", reads) });
      returnsOnlyValid({ ...base, attributes: flipping({}, "id", "ok", "x".repeat(257), reads) });
      returnsOnlyValid({ ...base, attributes: flipping({}, "id", "ok", 7, reads) });
    }
    // A Proxy whose key list changes between reads: whatever comes out is valid as it stands.
    let listed = 0;
    const shifting = new Proxy({ a: "1" } as Record<string, unknown>, {
      ownKeys: () => (listed++ === 0 ? ["a"] : ["a", "sys.x"]),
      getOwnPropertyDescriptor: (_t, key) => ({
        value: key === "a" ? "1" : "2",
        enumerable: true,
        configurable: true,
      }),
      get: (_t, key) => (key === "a" ? "1" : key === "sys.x" ? "2" : undefined),
    });
    returnsOnlyValid({ ...base, attributes: shifting });
    // A non-enumerable own key: zod's record skips it, and so does the copy.
    const hidden = Object.defineProperty({ team: "a" }, "secret", { value: "s", enumerable: false });
    expect(agrees({ ...base, attributes: hidden })).toBe(true);
    expect(fastParseObservation({ ...base, attributes: hidden })?.attributes).toEqual({ team: "a" });
  });

  it("reads each member of the subject, model and provider once, and agrees with the schema on hidden ones", () => {
    const base = observation({ input_tokens: 1 }, { provider: { providerId: "openai" } });
    for (const reads of [1, 2, 3]) {
      returnsOnlyValid({ ...base, subject: flipping({}, "tenantId", "acme", "", reads) });
      returnsOnlyValid({
        ...base,
        subject: flipping({ tenantId: "a" }, "endUserId", "u", "a\u0000b", reads),
      });
      returnsOnlyValid({ ...base, model: flipping({}, "billableModel", "m", "", reads) });
      returnsOnlyValid({
        ...base,
        model: flipping({ billableModel: "m" }, "region", "eu", "x".repeat(257), reads),
      });
      returnsOnlyValid({ ...base, provider: flipping({}, "providerId", "openai", "", reads) });
    }
    const hidden = <T extends object>(value: T, key: string, member: unknown): T =>
      Object.defineProperty(value, key, { value: member, enumerable: false });
    const inputs = [
      { ...base, subject: hidden({ tenantId: "acme" }, "orgId", "o") },
      { ...base, subject: hidden({ tenantId: "acme" }, "projectId", "") },
      { ...base, subject: hidden({}, "tenantId", "acme") },
      { ...base, model: hidden({ billableModel: "m" }, "tier", "priority") },
      { ...base, model: hidden({}, "billableModel", "m") },
      { ...base, provider: hidden({ providerId: "p" }, "extra", 1) },
      { ...base, provider: hidden({}, "providerId", "p") },
    ];
    for (const input of inputs) agrees(input);
    expect(agrees(base)).toBe(true);
  });

  it("sends a meter set whose constructor is not a plain object's to the schema (which refuses it)", () => {
    function Meters() {}
    Meters.prototype = Object.create(null);
    const meters = { input_tokens: 1 };
    Object.defineProperty(meters, "constructor", { value: Meters, enumerable: false });
    const input = { ...observation({}), meters };
    expect(UsageObservationSchema.safeParse(input).success).toBe(false);
    expect(fastParseObservation(input)).toBeUndefined();
  });

  it("parses an heir or a Proxy of a parsed observation itself, not as the parsed one it inherits from", () => {
    const parent = parseObservation(observation({ input_tokens: 1 }));
    const heir = Object.create(parent);
    Object.defineProperty(heir, "meters", { value: { input_tokens: 999 }, enumerable: true });
    const parsed = parseObservation(heir);
    expect(parsed).not.toBe(parent);
    expect(parsed.meters).toEqual({ input_tokens: 999 });
    expect(parsed.meters).toEqual(UsageObservationSchema.parse(heir).meters);
    const proxy = new Proxy(parent, {});
    expect(isParsedObservation(proxy)).toBe(false);
    expect(parseObservation(proxy)).toEqual(parent);
    expect(parseObservation(parent)).toBe(parent);
  });

  it("leaves a required member a Proxy's `has` denies to the schema, which refuses it as absent", () => {
    const hiding = (value: object, hidden: string) =>
      new Proxy(value, { has: (target, key) => key !== hidden && Reflect.has(target, key) });
    const full = () =>
      observation(
        { input_tokens: 5 },
        {
          outcome: { kind: "error", code: "rate_limited" },
          source: { kind: "corrected", correctionOf: "e-0" },
        },
      ) as unknown as Record<string, Record<string, unknown>>;
    const cases: (() => unknown)[] = [
      ...["eventId", "subject", "meters", "model", "source", "outcome", "timing"].map(
        (key) => () => hiding(full(), key),
      ),
      ...(
        [
          ["subject", "tenantId"],
          ["model", "billableModel"],
          ["provider", "providerId"],
          ["source", "kind"],
          ["source", "correctionOf"],
          ["outcome", "kind"],
          ["outcome", "code"],
          ["timing", "startedAt"],
          ["timing", "completedAt"],
        ] as const
      ).map(([outer, inner]) => () => {
        const input = full();
        input[outer] = hiding(input[outer] as object, inner) as Record<string, unknown>;
        return input;
      }),
    ];
    expect(agrees(full())).toBe(true); // the same observation, plain: taken fast
    for (const make of cases) {
      expect(UsageObservationSchema.safeParse(make()).success).toBe(false);
      expect(fastParseObservation(make())).toBeUndefined();
      expect(() => parseObservation(make())).toThrow(LatchValidationError);
    }
  });
});

// Adversarial review (attack-fastparse): the attributes pre-check against what zod's record and
// `refuseProtoKeys` read (Array.isArray, own non-enumerable `__proto__`), the byte bounds, key
// order and the observation hash either path gives.
describe("fastParseObservation: what zod's record and refuseProtoKeys see (adversarial review)", () => {
  const base = observation({ input_tokens: 1 });
  /** `parseObservation` refuses `input`, naming `path` (the schema's message, not a silent accept). */
  function refusedAt(input: unknown, path: string): void {
    expect(fastParseObservation(input)).toBeUndefined();
    let error: unknown;
    try {
      parseObservation(input);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(LatchValidationError);
    expect((error as Error).message).toContain(path);
  }

  it("sends an array with a null prototype (or a Proxy of one) to the schema, which refuses it", () => {
    // `plain()` looked at the prototype only; zod's isObject / isPlainObject refuse any array.
    const bare = <T extends object>(members: T): T =>
      Object.assign(Object.setPrototypeOf([], null), members) as T;
    refusedAt({ ...base, attributes: Object.setPrototypeOf(["a"], null) }, "attributes");
    refusedAt({ ...base, attributes: Object.setPrototypeOf([], null) }, "attributes");
    refusedAt({ ...base, meters: Object.setPrototypeOf([], null) }, "meters");
    refusedAt({ ...base, subject: bare({ tenantId: "acme" }) }, "subject");
    refusedAt({ ...base, model: bare({ billableModel: "m" }) }, "model");
    refusedAt({ ...base, provider: bare({ providerId: "p" }) }, "provider");
    refusedAt({ ...base, source: bare({ kind: "estimated" }) }, "source");
    refusedAt({ ...base, outcome: bare({ kind: "success" }) }, "outcome");
    refusedAt({ ...base, timing: bare({ ...base.timing }) }, "timing");
    refusedAt({ ...base, correlation: bare({ requestId: "r" }) }, "correlation");
    expect(fastParseObservation(bare({ ...base }))).toBeUndefined();
    expect(() => parseObservation(bare({ ...base }))).toThrow(LatchValidationError);
    // A Proxy of an array that hides its constructor and claims a plain prototype.
    const disguised = new Proxy(["a"], {
      getPrototypeOf: () => Object.prototype,
      get: (target, key) => (key === "constructor" ? undefined : Reflect.get(target, key)),
    });
    refusedAt({ ...base, attributes: disguised }, "attributes");
  });

  it("sends an own __proto__ key to refuseProtoKeys even when it is not enumerable", () => {
    // Whether such an input is refused must not depend on which path parses it.
    const attributes = Object.defineProperty({ team: "a" }, "__proto__", { value: "x", enumerable: false });
    refusedAt({ ...base, attributes }, "attributes.__proto__");
    const meters = Object.defineProperty({ input_tokens: 1 }, "__proto__", { value: 1, enumerable: false });
    refusedAt({ ...base, meters }, "meters.__proto__");
  });

  it("agrees with the schema at the UTF-8 bounds (astral, 2- and 3-byte characters) and on integer-like keys", () => {
    const accepted: Record<string, string>[] = [
      { ["😀".repeat(16)]: "😀".repeat(64) }, // 64 / 256 bytes, 4-byte characters
      { ["€".repeat(21) + "a"]: `${"€".repeat(85)}a` }, // 64 / 256 bytes, 3-byte characters
      { ["é".repeat(32)]: "é".repeat(128) },
      { [`${"😀".repeat(15)}é`]: "x" }, // 62 bytes: 4-byte and 2-byte mixed
      { b: "1", 10: "x", 2: "y", "4294967295": "z", "4294967294": "w", "01": "v", "-1": "u" },
      { "\uFFFF": "\uFEFF", "\uDBFF\uDFFF": "x", sys: "y", "Sys.x": "z" },
    ];
    for (const attributes of accepted) {
      const input = { ...base, attributes };
      expect(agrees(input)).toBe(true);
      // Either path, one observation hash: the same call recorded twice is one record.
      expect(observationHash(parseObservation(input))).toBe(
        canonicalHash(UsageObservationSchema.parse(input)),
      );
    }
    for (const attributes of [
      { ["😀".repeat(16) + "a"]: "v" },
      { [`${"😀".repeat(15)}é€`]: "v" }, // 65 bytes
      { k: `${"😀".repeat(64)}a` },
      { ["€".repeat(21) + "ab"]: "v" },
      { k: `${"€".repeat(85)}ab` },
      { k: "\uDE00\uD83D" },
    ]) {
      expect(fastParseObservation({ ...base, attributes })).toBeUndefined();
      expect(UsageObservationSchema.safeParse({ ...base, attributes }).success).toBe(false);
    }
  });

  it("keeps the attributes and the hash when record() links a hold (a spread copy re-parsed)", () => {
    const attributes = { team: "a", 7: "seven", é: "ü" };
    const parsed = parseObservation({ ...base, attributes });
    const linked = linkHold(parsed, { holdId: "hold-1" });
    expect(linked.attributes).toEqual(attributes);
    expect(Object.keys(linked.attributes ?? {})).toEqual(Object.keys(parsed.attributes ?? {}));
    const viaSchema = UsageObservationSchema.parse({ ...parsed, correlation: { holdId: "hold-1" } });
    expect(observationHash(linked)).toBe(canonicalHash(viaSchema));
  });
});

// Adversarial review (h-adv3): a parsed observation's completion time (which picks the price
// snapshot in effect) is `isoTimestampMs`, read from the digits for the usual forms; the inline
// record path no longer re-checks it with `Date.parse`. It must be the same instant.
describe("isoTimestampMs (a parsed observation's completedAtMs)", () => {
  it("is Date.parse for every timestamp the schema accepts: both usual forms, other fractions, edge years, leap days", () => {
    const digit = fc.constantFrom(..."0123456789");
    const two = (min: number, max: number) => fc.integer({ min, max }).map((n) => String(n).padStart(2, "0"));
    const fraction = fc.option(fc.array(digit, { minLength: 1, maxLength: 12 }).map((d) => `.${d.join("")}`));
    const form = fc
      .tuple(
        fc.oneof(
          fc.constantFrom("1970", "2000", "2100", "9999"),
          fc.integer({ min: 1970, max: 9999 }).map(String),
        ),
        two(1, 12),
        two(1, 31),
        two(0, 23),
        two(0, 59),
        two(0, 59),
        fraction,
      )
      .map(([y, mo, d, h, mi, s, f]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${f ?? ""}Z`);
    let accepted = 0;
    fc.assert(
      fc.property(form, (value) => {
        if (!IsoTimestampSchema.safeParse(value).success) return;
        accepted++;
        expect([value, isoTimestampMs(value)]).toEqual([value, Date.parse(value)]);
      }),
      { numRuns: 20_000 },
    );
    expect(accepted).toBeGreaterThan(15_000);
    for (const value of [
      "1970-01-01T00:00:00Z",
      "1970-01-01T00:00:00.000Z",
      "9999-12-31T23:59:59.999Z",
      "9999-12-31T23:59:59.9999999999Z",
      "2000-02-29T12:00:00.5Z",
      "2024-02-29T23:59:59.999Z",
    ]) {
      expect(IsoTimestampSchema.safeParse(value).success).toBe(true);
      expect([value, isoTimestampMs(value)]).toEqual([value, Date.parse(value)]);
    }
  });
});

describe("usualTimestamp (the pre-check's timestamp without the pattern)", () => {
  const schemaAccepts = (value: string) => IsoTimestampSchema.safeParse(value).success;
  const pad = (n: number, width: number) => String(n).padStart(width, "0");

  it("is the schema, in both usual forms, for every month end of 1900–2500 (leap days included)", () => {
    let accepted = 0;
    for (let year = 1900; year <= 2500; year++) {
      for (let month = 0; month <= 13; month++) {
        for (const day of [0, 1, 28, 29, 30, 31, 32]) {
          const date = `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;
          for (const value of [`${date}T23:59:59Z`, `${date}T00:00:00.000Z`]) {
            const usual = usualTimestamp(value);
            expect([value, usual]).toEqual([value, schemaAccepts(value)]);
            if (usual) accepted++;
          }
        }
      }
    }
    expect(accepted).toBeGreaterThan(10_000);
  });

  it("accepts only what the schema accepts, whatever the characters (property)", () => {
    const digit = fc.constantFrom(..."0123456789");
    const field = (width: number) =>
      fc.array(digit, { minLength: width, maxLength: width }).map((d) => d.join(""));
    const usualForm = fc
      .tuple(field(4), field(2), field(2), field(2), field(2), field(2), fc.option(field(3)))
      .map(([y, mo, d, h, mi, s, ms]) => `${y}-${mo}-${d}T${h}:${mi}:${s}${ms === null ? "" : `.${ms}`}Z`);
    const mutated = fc
      .tuple(usualForm, fc.nat(30), fc.constantFrom(..."0123456789-T:.Zzt +\u0000"), fc.boolean())
      .map(([value, at, ch, insert]) =>
        insert ? value.slice(0, at) + ch + value.slice(at) : value.slice(0, at) + ch + value.slice(at + 1),
      );
    fc.assert(
      fc.property(usualForm, (value) => {
        expect(usualTimestamp(value)).toBe(schemaAccepts(value));
      }),
      { numRuns: 5_000 },
    );
    fc.assert(
      fc.property(fc.oneof(mutated, fc.string({ maxLength: 26 })), (value) => {
        if (usualTimestamp(value)) expect(schemaAccepts(value)).toBe(true);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe("pre-checks and Proxies whose getPrototypeOf throws", () => {
  it("hand them to the schema, which parses them as it did before the pre-checks", () => {
    const throwing = <T extends object>(target: T): T =>
      new Proxy(target, {
        getPrototypeOf() {
          throw new Error("trap");
        },
      });
    const base = observation({ input_tokens: 10, output_tokens: 3 });
    expect(fastParseObservation(throwing({ ...base }))).toBeUndefined();
    expect(
      fastParseProviderUsage(throwing({ api: "openaiChat", usage: {}, observation: {} })),
    ).toBeUndefined();
    expect(fastParseReserve(throwing({ account: "acme", amount: 1 }))).toBeUndefined();
    expect(
      fastParse(OpenAIChatUsageSchema, throwing({ prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 })),
    ).toBeUndefined();
    // What happens next is the schema's, as before the pre-checks: a plain object schema reads
    // no prototype and parses it; a strict one asks for it, and the trap's error propagates.
    const usage = { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 };
    expect(parseFast(OpenAIChatUsageSchema, throwing({ ...usage }), "usage")).toEqual(usage);
    expect(() =>
      parseReserveRequest(throwing({ holdId: "h", account: "acme", amount: 1, ttlMs: 1_000 })),
    ).toThrow("trap");
    const { proxy, revoke } = Proxy.revocable({ account: "acme", amount: 1 }, {});
    revoke();
    expect(fastParseReserve(proxy)).toBeUndefined();
  });
});
