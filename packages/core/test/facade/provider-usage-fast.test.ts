import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatchValidationError } from "../../src/errors/index.js";
import { toObservation } from "../../src/facade/provider-usage.js";
import { fastParseProviderUsage } from "../../src/facade/provider-usage-fast.js";
import { ProviderUsageSchema, USAGE_APIS } from "../../src/facade/provider-usage-schema.js";
import { flipping, readsOf } from "../hostile.js";

/** Every own key (symbols and non-enumerable ones included), in order, with its descriptor. */
function layout(value: object): unknown[] {
  return Reflect.ownKeys(value).map((key) => [key, Object.getOwnPropertyDescriptor(value, key)]);
}

/**
 * Whatever the pre-check accepts, the schema accepts, with exactly the same output: the same
 * own keys in the same order (as data properties, absent and `undefined` told apart), the same
 * prototype, `api` / `usage` / `response` the very values given, and `observation` a fresh copy
 * holding the schema's keys, in its order, with the very values. True when it accepted.
 */
function agrees(input: unknown): boolean {
  const fast = fastParseProviderUsage(input);
  if (fast === undefined) return false;
  const parsed = ProviderUsageSchema.safeParse(input);
  expect(parsed.success).toBe(true);
  const data = parsed.data as Record<string, unknown>;
  expect(layout(fast)).toEqual(layout(data));
  expect(Object.getPrototypeOf(fast)).toBe(Object.getPrototypeOf(data));
  for (const key of ["api", "usage", "response"] as const) expect(Object.is(fast[key], data[key])).toBe(true);
  const observation = data.observation as object;
  expect(layout(fast.observation)).toEqual(layout(observation));
  expect(Object.getPrototypeOf(fast.observation)).toBe(Object.getPrototypeOf(observation));
  expect(fast.observation).not.toBe((input as { observation: unknown }).observation);
  expect(fast).toEqual(data);
  return true;
}

/** The schema refuses `input`, and so does the pre-check (which leaves it to the schema's message). */
function refused(input: unknown): void {
  expect(ProviderUsageSchema.safeParse(input).success).toBe(false);
  expect(fastParseProviderUsage(input)).toBeUndefined();
}

const CALL: Record<string, unknown> = {
  eventId: "req-1:0:openai",
  subject: { tenantId: "acme" },
  model: { billableModel: "gpt-4o" },
  provider: { providerId: "openai" },
  source: { kind: "provider_reported" },
  outcome: { kind: "success" },
  timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
};
const USAGE = { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100 };

const pick = (...values: unknown[]) => fc.constantFrom(...values);
/** Mostly `good`, sometimes `bad`: most generated payloads are valid, each member can break. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: bad, weight: 1 });

/** A key the record copies as is, or one it treats apart (`__proto__`, integer-like, odd text). */
const recordKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("eventId", "subject", "meters", "model", "timing", "attributes", "constructor", "toString"),
  fc.constantFrom("__proto__", "10", "2", "0", "-1", "01", "4294967295", "", "a\u0000b", "\uD800", "é"),
  fc.string({ maxLength: 4 }),
);
/** A member value: passed through unread (`z.unknown()`), whatever it is. */
const anyValue = fc.oneof(
  pick(undefined, null, 0, -0, Number.NaN, 1e21, "", "\u0000", "\uDC00", false, [], {}),
  fc.anything({ withNullPrototype: true, withBoxedValues: true, withMap: true, withSet: true }),
);
/** A hostile variation on an observation object (its own keys as `Object.keys` lists them). */
const hostileObservation = fc.oneof(
  fc.constant((o: Record<string, unknown>) => ({ ...o, [Symbol("s")]: 1 })),
  fc.constant((o: Record<string, unknown>) =>
    Object.defineProperty({ ...o }, Symbol("hidden"), { value: 1, enumerable: false }),
  ),
  fc.constant((o: Record<string, unknown>) =>
    Object.defineProperty({ ...o }, "hidden", { value: 1, enumerable: false }),
  ),
  fc.constant((o: Record<string, unknown>) =>
    Object.defineProperty({ ...o }, "__proto__", { value: 1, enumerable: false }),
  ),
  fc.constant((o: Record<string, unknown>) => ({ ...JSON.parse(`{"__proto__": 1}`), ...o })),
  fc.constant((o: Record<string, unknown>) => Object.assign(JSON.parse(`{"__proto__": 1}`), o)),
  fc.constant((o: Record<string, unknown>) => Object.assign(Object.create(null), o)),
  fc.constant((o: Record<string, unknown>) => Object.assign(Object.create({ inherited: 1 }), o)),
  fc.constant((o: Record<string, unknown>) => Object.assign(new (class Call {})(), o)),
  fc.constant((o: Record<string, unknown>) => Object.assign(Object.setPrototypeOf([], null), o)),
  fc.constant((o: Record<string, unknown>) => Object.assign([], o)),
  fc.constant((o: Record<string, unknown>) =>
    Object.defineProperty({ ...o }, "constructor", { value: class Other {}, enumerable: false }),
  ),
  fc.constant((o: Record<string, unknown>) => ({ ...o, constructor: "x" })),
  fc.constant((o: Record<string, unknown>) => ({ ...o, constructor: Object })),
  fc.constant((o: Record<string, unknown>) =>
    Object.defineProperty({ ...o }, "eventId", { get: () => "steady", enumerable: true }),
  ),
  fc.constant((o: Record<string, unknown>) => Object.freeze({ ...o })),
  fc.constant((_o: Record<string, unknown>) => null),
  fc.constant((_o: Record<string, unknown>) => "call"),
  fc.constant((_o: Record<string, unknown>) => new Map([["eventId", "e"]])),
);
const observation = mostly(
  fc.oneof(
    fc.constant(CALL),
    fc.dictionary(recordKey, anyValue, { maxKeys: 8 }),
    fc.record({ eventId: anyValue, subject: anyValue, meters: anyValue }, { requiredKeys: [] }),
  ),
  fc
    .tuple(fc.dictionary(recordKey, anyValue, { maxKeys: 4 }), hostileObservation)
    .map(([base, make]) => make(base)),
);
/** A payload form: usually an object, sometimes any value (`null`, `0`, `NaN`… all count as given). */
const payload = mostly(pick(USAGE, { usage: USAGE }, {}), anyValue);
const api = mostly(
  pick(...USAGE_APIS),
  pick("openai.chat", "", "__proto__", "toString", "constructor", "OPENAICHAT", 1, null, undefined, {}),
);
/** A hostile variation on the payload object itself. */
const hostileTop = fc.oneof(
  fc.constant((p: Record<string, unknown>) => p),
  fc.constant((p: Record<string, unknown>) => ({ ...p, extra: 1 })),
  fc.constant((p: Record<string, unknown>) => ({ ...p, [Symbol("s")]: 1 })),
  fc.constant((p: Record<string, unknown>) => Object.assign(Object.create(null), p)),
  fc.constant((p: Record<string, unknown>) => Object.assign(Object.create({ usage: USAGE }), p)),
  fc.constant((p: Record<string, unknown>) => Object.assign(new (class Payload {})(), p)),
  fc.constant((p: Record<string, unknown>) => Object.assign(Object.setPrototypeOf([], null), p)),
  fc.constant((p: Record<string, unknown>) => ({ ...JSON.parse(`{"__proto__": 1}`), ...p })),
  fc.constant((p: Record<string, unknown>) =>
    Object.defineProperty({ ...p }, "hidden", { value: 1, enumerable: false }),
  ),
  fc.constant((p: Record<string, unknown>) => new Proxy({ ...p }, {})),
  // A Proxy whose `has` denies a member its `get` gives (zod: absent), or claims one it lacks.
  ...["api", "usage", "response", "observation"].flatMap((key) => [
    fc.constant(
      (p: Record<string, unknown>) => new Proxy({ ...p }, { has: (t, k) => k !== key && Reflect.has(t, k) }),
    ),
    fc.constant(
      (p: Record<string, unknown>) => new Proxy({ ...p }, { has: (t, k) => k === key || Reflect.has(t, k) }),
    ),
  ]),
);
const input = fc
  .tuple(
    fc.record({ api, usage: payload, response: payload, observation }, { requiredKeys: [] }),
    mostly(
      fc.constant((p: Record<string, unknown>) => p),
      hostileTop,
    ),
  )
  .map(([members, make]) => make(members));

describe("fastParseProviderUsage (toObservation's pre-check)", () => {
  it("accepts each payload form and gives exactly the schema's output", () => {
    for (const api of USAGE_APIS) {
      expect(agrees({ api, usage: USAGE, observation: CALL })).toBe(true);
      expect(agrees({ api, response: { usage: USAGE }, observation: CALL })).toBe(true);
    }
    // Any value but `undefined` is a payload here (its normalizer checks it, naming the field).
    for (const value of [null, 0, -0, Number.NaN, "", false, [], 1e21]) {
      expect(agrees({ api: "openaiChat", usage: value, observation: {} })).toBe(true);
      expect(agrees({ api: "openaiChat", response: value, observation: {} })).toBe(true);
    }
  });

  it("keeps the other form present as `undefined` (as the schema does), and leaves it out when absent", () => {
    const given = fastParseProviderUsage({
      api: "anthropic",
      usage: undefined,
      response: USAGE,
      observation: {},
    });
    expect(Object.keys(given ?? {})).toEqual(["api", "usage", "response", "observation"]);
    expect(agrees({ api: "anthropic", usage: undefined, response: USAGE, observation: {} })).toBe(true);
    expect(agrees({ api: "anthropic", usage: USAGE, response: undefined, observation: {} })).toBe(true);
    const absent = fastParseProviderUsage({ observation: {}, response: USAGE, api: "gemini" });
    // The schema's key order, whatever the caller's.
    expect(Object.keys(absent ?? {})).toEqual(["api", "response", "observation"]);
    expect(agrees({ observation: {}, response: USAGE, api: "gemini" })).toBe(true);
  });

  it("copies the observation as z.record does: own enumerable string keys, in Object.keys order", () => {
    const call = { b: 1, a: 2, 10: "x", 2: "y", "01": "z", toString: "t" };
    const out = fastParseProviderUsage({ api: "openaiChat", usage: USAGE, observation: call });
    expect(Object.keys(out?.observation ?? {})).toEqual(["2", "10", "b", "a", "01", "toString"]);
    expect(agrees({ api: "openaiChat", usage: USAGE, observation: call })).toBe(true);
    // A null-prototype observation comes out with a plain one, as the schema's copy.
    const bare = Object.assign(Object.create(null), { eventId: "e" });
    expect(
      Object.getPrototypeOf(
        fastParseProviderUsage({ api: "gemini", usage: {}, observation: bare })?.observation,
      ),
    ).toBe(Object.prototype);
    expect(agrees({ api: "gemini", usage: {}, observation: bare })).toBe(true);
    // A non-enumerable member or an inherited one is not copied (the schema leaves both out).
    const hidden = Object.defineProperty({ eventId: "e" }, "meters", { value: { x: 1 }, enumerable: false });
    expect(
      Object.keys(
        fastParseProviderUsage({ api: "gemini", usage: {}, observation: hidden })?.observation ?? {},
      ),
    ).toEqual(["eventId"]);
    expect(agrees({ api: "gemini", usage: {}, observation: hidden })).toBe(true);
    const heir = Object.assign(Object.create({ meters: { x: 1 } }), { eventId: "e" });
    expect(agrees({ api: "gemini", usage: {}, observation: heir })).toBe(false); // not a plain object
    expect(ProviderUsageSchema.parse({ api: "gemini", usage: {}, observation: heir }).observation).toEqual({
      eventId: "e",
    });
    // Values are the caller's own, uncopied (frozen or not): the record reads them as `unknown`.
    const subject = Object.freeze({ tenantId: "acme" });
    expect(
      fastParseProviderUsage({ api: "gemini", usage: {}, observation: { subject } })?.observation.subject,
    ).toBe(subject);
  });

  it("drops a symbol key of the payload object as the schema does (a strict object skips them)", () => {
    expect(agrees({ api: "openaiChat", usage: USAGE, observation: {}, [Symbol("s")]: 1 })).toBe(true);
    expect(
      Reflect.ownKeys(
        fastParseProviderUsage({ api: "openaiChat", usage: USAGE, observation: {}, [Symbol("s")]: 1 }) ?? {},
      ),
    ).toEqual(["api", "usage", "observation"]);
  });

  it("leaves what the schema refuses to it (it owns every message)", () => {
    refused({ api: "openai.chat", usage: USAGE, observation: {} });
    refused({ api: "openaiChat", observation: {} });
    refused({ api: "openaiChat", usage: undefined, response: undefined, observation: {} });
    refused({ api: "openaiChat", usage: USAGE, response: USAGE, observation: {} });
    refused({ api: "openaiChat", usage: USAGE, observation: {}, extra: 1 });
    refused({ api: "openaiChat", usage: USAGE });
    refused({ api: "openaiChat", usage: USAGE, observation: undefined });
    refused({ api: "openaiChat", usage: USAGE, observation: [] });
    refused({ api: "openaiChat", usage: USAGE, observation: Object.setPrototypeOf([], null) });
    refused({ api: "openaiChat", usage: USAGE, observation: { [Symbol("s")]: 1 } });
    refused({ api: "openaiChat", usage: USAGE, observation: new (class Call {})() });
    refused({ usage: USAGE, observation: {} });
    refused(
      Object.assign(Object.setPrototypeOf([], null), { api: "openaiChat", usage: USAGE, observation: {} }),
    );
    refused(null);
    refused("openaiChat");
  });

  it("sends anything unusual to the schema, even what it accepts (the pre-check can only be stricter)", () => {
    const unusual: unknown[] = [
      // An own `__proto__` in the observation: the record drops it unread.
      { api: "openaiChat", usage: USAGE, observation: JSON.parse(`{"__proto__": 1, "eventId": "e"}`) },
      { api: "openaiChat", usage: USAGE, observation: Object.defineProperty({}, "__proto__", { value: 1 }) },
      // A non-enumerable symbol key: the record skips it.
      { api: "openaiChat", usage: USAGE, observation: Object.defineProperty({}, Symbol("s"), { value: 1 }) },
      // An inherited member, a class instance, a non-enumerable member of the payload object.
      { api: "openaiChat", usage: USAGE, observation: Object.create({ eventId: "e" }) },
      // An own `constructor` that is not Object (zod's isPlainObject takes a non-function one).
      { api: "openaiChat", usage: USAGE, observation: { constructor: "c" } },
      Object.assign(new (class Payload {})(), { api: "openaiChat", usage: USAGE, observation: {} }),
      Object.defineProperty({ api: "openaiChat", observation: {} }, "usage", { value: USAGE }),
      Object.defineProperty({ usage: USAGE, observation: {} }, "api", { value: "openaiChat" }),
    ];
    for (const value of unusual) {
      expect(fastParseProviderUsage(value)).toBeUndefined();
      expect(ProviderUsageSchema.safeParse(value).success).toBe(true);
    }
    expect(ProviderUsageSchema.parse(unusual[0]).observation).toEqual({ eventId: "e" });
  });

  it("accepts only what the schema accepts, and gives the same value in the same shape", () => {
    let accepted = 0;
    let valid = 0;
    fc.assert(
      fc.property(input, (value) => {
        if (agrees(value)) accepted++;
        if (ProviderUsageSchema.safeParse(value).success) valid++;
        else expect(fastParseProviderUsage(value)).toBeUndefined();
      }),
      { numRuns: 5_000 },
    );
    // The generator reaches the accepting side often enough for the comparison to mean something.
    expect(accepted).toBeGreaterThan(500);
    expect(accepted).toBeLessThanOrEqual(valid);
  });
});

describe("fastParseProviderUsage against hostile objects", () => {
  it("reads each member once, and returns exactly the value it checked", () => {
    const base = { api: "openaiChat", usage: USAGE, observation: { eventId: "e" } } as Record<
      string,
      unknown
    >;
    const cases: [string, unknown, unknown][] = [
      ["api", "openaiChat", "bogus"],
      ["usage", USAGE, undefined],
      ["observation", { eventId: "e" }, []],
    ];
    for (const [key, first, then] of cases) {
      const out = flipping(base, key, first, then);
      const fast = fastParseProviderUsage(out);
      expect(readsOf(out)).toBe(1);
      expect(fast?.[key as "api"]).toEqual(first);
    }
    // Present as `undefined` on its one read: the other form alone is the payload.
    const none = flipping({ ...base, response: USAGE }, "usage", undefined, USAGE);
    expect(fastParseProviderUsage(none)?.usage).toBeUndefined();
    expect(readsOf(none)).toBe(1);
    // Each observation member read once, the value read is the value copied.
    const call = flipping({ eventId: "e" }, "subject", "first", "second");
    expect(fastParseProviderUsage({ ...base, observation: call })?.observation.subject).toBe("first");
    expect(readsOf(call)).toBe(1);
  });

  it("agrees with the schema under prototype pollution: an inherited key is never copied", () => {
    const proto = Object.prototype as Record<string, unknown>;
    proto.polluted = "x";
    try {
      // A plain payload object now has an unknown (inherited) key: both refuse it.
      refused({ api: "openaiChat", usage: USAGE, observation: { eventId: "e" } });
      // A null-prototype one has none; its observation's inherited key stays out of the copy.
      const bare = Object.assign(Object.create(null), {
        api: "openaiChat",
        usage: USAGE,
        observation: { eventId: "e" },
      });
      expect(agrees(bare)).toBe(true);
      expect(Object.keys(fastParseProviderUsage(bare)?.observation ?? {})).toEqual(["eventId"]);
    } finally {
      delete proto.polluted;
    }
  });

  it("takes a member a Proxy's `has` denies as absent, as the schema does", () => {
    const hiding = (value: object, hidden: string) =>
      new Proxy(value, { has: (target, key) => key !== hidden && Reflect.has(target, key) });
    // Required members the schema finds absent: refused (it names them).
    refused(hiding({ api: "openaiChat", usage: USAGE, observation: CALL }, "api"));
    refused(hiding({ api: "openaiChat", usage: USAGE, observation: CALL }, "observation"));
    // An optional one the schema leaves out: then no payload form is given.
    refused(hiding({ api: "openaiChat", usage: USAGE, observation: CALL }, "usage"));
    // Both forms, one denied: the schema keeps the other only; the pre-check, which counts the
    // denied one among the enumerable keys, leaves it to the schema.
    const both = hiding(
      { api: "openaiChat", usage: USAGE, response: { usage: USAGE }, observation: CALL },
      "usage",
    );
    expect(fastParseProviderUsage(both)).toBeUndefined();
    expect(Object.keys(ProviderUsageSchema.parse(both))).toEqual(["api", "response", "observation"]);
  });

  it("agrees with the schema on a Proxy that answers as a plain object", () => {
    expect(agrees(new Proxy({ api: "openaiChat", usage: USAGE, observation: CALL }, {}))).toBe(true);
    expect(agrees({ api: "openaiChat", usage: USAGE, observation: new Proxy({ ...CALL }, {}) })).toBe(true);
  });
});

describe("toObservation through the pre-check and through the schema", () => {
  /** The same payload object, but a class instance: the pre-check refuses it, the schema takes it. */
  const viaSchema = (input: Record<string, unknown>) => Object.assign(new (class Payload {})(), input);
  /** What `fn` returns, or the error it throws (class, message, issues). */
  function outcome(fn: () => unknown): unknown {
    try {
      return { value: fn() };
    } catch (error) {
      const e = error as LatchValidationError;
      return { error: e.constructor.name, message: e.message, issues: e.issues };
    }
  }

  const dir = new URL("../fixtures/providers/", import.meta.url);
  const fixtures = readdirSync(dir)
    .filter((name) => name.endsWith(".json"))
    .map((name) => [name, JSON.parse(readFileSync(new URL(name, dir), "utf8"))] as const);
  const apiOf = (name: string) =>
    ({
      anthropic: "anthropic",
      gemini: "gemini",
      "openai-chat": "openaiChat",
      "openai-images": "openaiImages",
      "openai-responses": "openaiResponses",
      openrouter: "openrouter",
    })[name.split(".")[0] as string];
  const calls: Record<string, unknown>[] = [
    CALL,
    { ...CALL, meters: { "custom:moderation_calls": 2 } },
    { ...CALL, meters: { input_tokens: 5 } },
    { ...CALL, model: { billableModel: "gpt-4o", tier: "priority" } },
    { ...CALL, model: { billableModel: "gpt-4o", tier: "batch" } },
    { ...CALL, correlation: { requestId: "r" }, attributes: { team: "a" } },
    { ...CALL, eventId: "" },
    { ...CALL, meters: [] },
    { ...CALL, extra: 1 },
  ];

  it("gives the same observation or the same error for every provider fixture", () => {
    expect(fixtures.length).toBeGreaterThan(30);
    let rated = 0;
    for (const [name, body] of fixtures) {
      const api = apiOf(name);
      expect(api).toBeDefined();
      for (const call of calls) {
        for (const form of ["usage", "response"] as const) {
          const payload = form === "usage" ? (body.usage ?? body.usageMetadata ?? body) : body;
          const input = { api, [form]: payload, observation: call };
          const fast = outcome(() => toObservation(input as never));
          expect(fast).toEqual(outcome(() => toObservation(viaSchema(input) as never)));
          if ("value" in (fast as object)) rated++;
        }
      }
    }
    expect(rated).toBeGreaterThan(100);
  });

  it("never writes to the caller's observation (frozen or not), through either path", () => {
    const call = Object.freeze({ ...CALL, meters: Object.freeze({ "custom:moderation_calls": 1 }) });
    const input = {
      api: "openaiChat",
      response: { usage: USAGE, service_tier: "default" },
      observation: call,
    };
    const fast = toObservation(input as never);
    expect(toObservation(viaSchema(input) as never)).toEqual(fast);
    expect(fast.meters).toEqual({ input_tokens: 1000, output_tokens: 100, "custom:moderation_calls": 1 });
    expect(fast.model).toEqual({ billableModel: "gpt-4o", tier: "standard" });
    expect(call).toEqual({ ...CALL, meters: { "custom:moderation_calls": 1 } });
    const open = { ...CALL };
    toObservation({ api: "openaiChat", usage: USAGE, observation: open } as never);
    expect(open).toEqual(CALL);
    expect(Object.keys(open)).toEqual(Object.keys(CALL));
  });

  it("names the field the schema names when the pre-check leaves a payload to it", () => {
    const e = (() => {
      try {
        toObservation({ api: "openai.chat", usage: USAGE, observation: CALL } as never);
      } catch (error) {
        return error as LatchValidationError;
      }
    })();
    expect(e).toBeInstanceOf(LatchValidationError);
    expect(e?.issues.map((i) => i.path)).toEqual(["api"]);
  });
});
