/**
 * The normalizers' fast readers (src/normalize/fast-read.ts) against their zod schemas: whatever
 * a reader accepts, the schema accepts, with exactly the same output (keys, key order, values,
 * `-0`, `undefined` vs absent, prototypes); whatever the schema refuses, the reader leaves to
 * it. Inputs are generated from each schema's own definition (valid members, then each member
 * broken now and then, extra keys, odd objects), plus every real provider payload of
 * test/fixtures/real, which the fast path must read itself.
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { AnthropicMessageSchema, AnthropicUsageSchema } from "../../src/normalize/anthropic.js";
import {
  anyString,
  anyValue,
  fastParse,
  list,
  nullish,
  object,
  optional,
} from "../../src/normalize/fast-read.js";
import { GeminiResponseSchema, GeminiUsageSchema } from "../../src/normalize/gemini.js";
import {
  normalizeOpenAIChat,
  OpenAIChatResponseSchema,
  OpenAIChatUsageSchema,
} from "../../src/normalize/openai-chat.js";
import { ImagesResponseSchema, OpenAIImagesUsageSchema } from "../../src/normalize/openai-images.js";
import { OpenAIResponsesUsageSchema, ResponseSchema } from "../../src/normalize/openai-responses.js";
import { OpenRouterResponseSchema, OpenRouterUsageSchema } from "../../src/normalize/openrouter.js";
import { optionalCount } from "../../src/normalize/shared.js";
import { isQuantity, QuantitySchema } from "../../src/schemas/meters.js";
import { flipping } from "../hostile.js";

type ObjectSchema = z.ZodObject;

const USAGE: Record<string, ObjectSchema> = {
  OpenAIChatUsageSchema,
  OpenAIResponsesUsageSchema,
  OpenAIImagesUsageSchema,
  OpenRouterUsageSchema,
  AnthropicUsageSchema,
  GeminiUsageSchema,
};
const RESPONSES: Record<string, ObjectSchema> = {
  OpenAIChatResponseSchema,
  ResponseSchema,
  ImagesResponseSchema,
  OpenRouterResponseSchema,
  AnthropicMessageSchema,
  GeminiResponseSchema,
};
const ALL = { ...USAGE, ...RESPONSES };

/** Keys in order, prototypes and `undefined` members included, all the way down. */
function shape(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const proto = Object.getPrototypeOf(value);
  const kind = Array.isArray(value) ? "array" : proto === Object.prototype ? "object" : "other";
  return [kind, Reflect.ownKeys(value).map((k) => [k, shape((value as Record<PropertyKey, unknown>)[k])])];
}

/**
 * The reader agrees with the schema on `input`: accepted, the schema accepts it with the same
 * output (a fresh object, not the input); refused by the schema, the reader refused it too.
 * True when the reader accepted.
 */
function agrees(schema: ObjectSchema, input: unknown): boolean {
  const fast = fastParse(schema, input);
  const parsed = schema.safeParse(input);
  if (fast === undefined) return false;
  expect(parsed.success).toBe(true);
  expect(shape(fast)).toEqual(shape(parsed.data));
  expect(fast).not.toBe(input);
  return true;
}

/** Whatever the reader returns is valid as it stands (for inputs that may answer differently per read). */
function returnsOnlyValid(schema: ObjectSchema, input: unknown): void {
  const fast = fastParse(schema, input);
  if (fast === undefined) return;
  const again = schema.safeParse(fast);
  expect(again.success).toBe(true);
  expect(shape(again.data)).toEqual(shape(fast));
}

const pick = (...values: unknown[]) => fc.constantFrom(...values);
/** Mostly `good`, sometimes `bad`. */
const mostly = (good: fc.Arbitrary<unknown>, bad: fc.Arbitrary<unknown>) =>
  fc.oneof({ arbitrary: good, weight: 25 }, { arbitrary: bad, weight: 1 });

const nullProto = (members: object) => Object.assign(Object.create(null), members);
class Payload {}
const HOSTILE_NUMBERS = [
  -0,
  -1,
  1.5,
  0.1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  1e21,
  2 ** 53,
  -(2 ** 53),
  Number.MIN_VALUE,
  "12",
  "0",
  " 1",
  "1e3",
  12n,
  true,
  false,
  null,
  undefined,
  {},
  [],
  [1],
  new Number(3),
];
const count = mostly(
  fc.oneof(fc.nat(100_000), pick(0, -0, 1, Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 32 + 1)),
  fc.oneof(pick(...HOSTILE_NUMBERS), fc.double(), fc.integer({ min: -1000, max: -1 })),
);
const string = mostly(
  fc.oneof(
    pick("TEXT", "AUDIO", "IMAGE", "message", "compaction", "advisor_message", "fallback_message"),
    pick(
      "default",
      "standard",
      "priority",
      "ON_DEMAND",
      "",
      "a\u0000b",
      "\uD800",
      "\uDFFF\uD800",
      "web_search_call",
    ),
    fc.string(),
  ),
  pick(1, 0, null, undefined, {}, [], true, new String("x"), Symbol("s")),
);
/** Odd stand-ins for an object or an array, which only some schemas accept (null-prototype objects). */
const ODD = [
  null,
  "x",
  7,
  [],
  Object.setPrototypeOf([], null),
  Object.setPrototypeOf([{}], null),
  new Map(),
  new Date(0),
  nullProto({}),
  new Payload(),
];

/** Inputs for `schema`, generated from its definition. */
function arb(schema: z.ZodType, depth = 0): fc.Arbitrary<unknown> {
  const def = (schema as unknown as { _zod: { def: Record<string, unknown> & { type: string } } })._zod.def;
  switch (def.type) {
    case "number":
      return count;
    case "string":
      return string;
    case "unknown":
      return mostly(fc.oneof(fc.anything(), pick({ prompt_tokens: 1 })), pick(undefined, null, -0));
    case "optional":
      return fc.oneof(
        { arbitrary: arb(def.innerType as z.ZodType, depth), weight: 4 },
        fc.constant(undefined),
      );
    case "nullable":
      return fc.oneof({ arbitrary: arb(def.innerType as z.ZodType, depth), weight: 4 }, fc.constant(null));
    case "array": {
      const element = arb(def.element as z.ZodType, depth + 1);
      return mostly(
        fc.array(element, { maxLength: depth > 2 ? 1 : 3 }),
        fc.oneof(
          pick(...ODD),
          element.map((e) => {
            const sparse: unknown[] = [e];
            sparse.length = 3; // holes read as `undefined`
            return sparse;
          }),
          element.map((e) => Object.setPrototypeOf([e], null)),
          element.map((e) => Object.assign([e], { extra: 1 })),
        ),
      );
    }
    case "object":
      return objectArb(def.shape as Record<string, z.ZodType>, depth);
    default:
      throw new Error(`no generator for ${def.type}`);
  }
}

function objectArb(members: Record<string, z.ZodType>, depth: number): fc.Arbitrary<unknown> {
  const required = Object.keys(members).filter((k) => !members[k]?.safeParse(undefined).success);
  const arbs = Object.fromEntries(Object.entries(members).map(([k, s]) => [k, arb(s, depth + 1)]));
  const base = fc.record(arbs, { requiredKeys: required });
  const extra = fc.dictionary(
    fc.oneof(fc.constantFrom("cost", "inference_geo", "modality", "prompt_tokens", "is_byok"), fc.string()),
    fc.anything(),
    { maxKeys: 2 },
  );
  return fc
    .tuple(base, mostly(fc.constant({}), extra), fc.nat(30), fc.nat(20))
    .map(([value, more, drop, variant]) => {
      let out: Record<string, unknown> = { ...(value as object), ...(more as object) };
      // The extra keys first sometimes: the output follows the schema's order, not the input's.
      if (variant === 1) out = { ...(more as object), ...(value as object) };
      if (drop === 0 && required.length > 0) delete out[required[0] as string];
      switch (variant) {
        case 2:
          return nullProto(out);
        case 3:
          return Object.assign(new Payload(), out);
        case 4:
          return Object.assign(Object.setPrototypeOf([], null), out);
        case 5:
          return Object.assign(out, { [Symbol("s")]: 1 });
        case 6:
          return Object.assign(JSON.parse('{"__proto__": {"prompt_tokens": 1}}'), out);
        case 7: {
          // A member present but not enumerable: zod reads it by name all the same.
          const key = Object.keys(out)[0];
          if (key !== undefined) Object.defineProperty(out, key, { enumerable: false });
          return out;
        }
        case 8:
          return new Proxy(out, {});
        case 9:
          return Object.create(out);
        case 10: {
          // A Proxy whose `has` denies a member its `get` gives: zod takes it as absent.
          const key = Object.keys(out)[0];
          return new Proxy(out, { has: (target, k) => k !== key && Reflect.has(target, k) });
        }
        case 11: {
          // A Proxy whose `has` claims a member it lacks (read as `undefined`): zod takes it as present.
          const key = Object.keys(members).find((k) => !(k in out));
          return new Proxy(out, { has: (target, k) => k === key || Reflect.has(target, k) });
        }
        default:
          return out;
      }
    });
}

describe("fast readers: every usage and response schema", () => {
  for (const [name, schema] of Object.entries(ALL)) {
    it(`${name}: accepts only what the schema accepts, with exactly its output`, () => {
      let accepted = 0;
      let valid = 0;
      fc.assert(
        fc.property(mostly(arb(schema), pick(...ODD)), (input) => {
          if (agrees(schema, input)) accepted++;
          if (schema.safeParse(input).success) valid++;
        }),
        { numRuns: 3_000 },
      );
      // The generator reaches the accepting side often enough for the comparison to mean something.
      expect(accepted).toBeGreaterThan(300);
      expect(accepted).toBeLessThanOrEqual(valid);
    });
  }

  it("reads every real provider payload itself (no zod), as the schema does", () => {
    const root = new URL("../fixtures/real/", import.meta.url);
    const fixtures: { file: string; kind: string; api: string }[] = JSON.parse(
      readFileSync(new URL("manifest.json", root), "utf8"),
    ).fixtures;
    const schemas: Record<string, [ObjectSchema, ObjectSchema, string]> = {
      openaiChat: [OpenAIChatResponseSchema, OpenAIChatUsageSchema, "usage"],
      openaiResponses: [ResponseSchema, OpenAIResponsesUsageSchema, "usage"],
      openrouter: [OpenRouterResponseSchema, OpenRouterUsageSchema, "usage"],
      anthropic: [AnthropicMessageSchema, AnthropicUsageSchema, "usage"],
      gemini: [GeminiResponseSchema, GeminiUsageSchema, "usageMetadata"],
    };
    let read = 0;
    for (const fixture of fixtures.filter((f) => f.kind === "response")) {
      const [wrapper, usage, key] = schemas[fixture.api] as [ObjectSchema, ObjectSchema, string];
      const body = JSON.parse(readFileSync(new URL(fixture.file, root), "utf8"));
      expect(agrees(wrapper, body), fixture.file).toBe(true);
      const inner = body[key];
      if (inner === undefined || inner === null) continue;
      // A payload the schema refuses (a recorded oddity) is the schema's; every other one is read fast.
      expect(agrees(usage, inner), fixture.file).toBe(usage.safeParse(inner).success);
      read++;
    }
    expect(read).toBeGreaterThan(250);
  });

  it("keeps absent members absent, `undefined` ones `undefined`, `null` and -0 as they are, in the schema's order", () => {
    const input = {
      extra: 1,
      completion_tokens_details: undefined,
      total_tokens: 3,
      prompt_tokens_details: null,
      completion_tokens: -0,
      prompt_tokens: 3,
      prompt_cache_hit_tokens: undefined,
    };
    expect(agrees(OpenAIChatUsageSchema, input)).toBe(true);
    const out = fastParse(OpenAIChatUsageSchema, input) as Record<string, unknown>;
    expect(Object.keys(out)).toEqual([
      "prompt_tokens",
      "completion_tokens",
      "total_tokens",
      "prompt_tokens_details",
      "completion_tokens_details",
      "prompt_cache_hit_tokens",
    ]);
    expect(Object.is(out.completion_tokens, -0)).toBe(true);
    expect(Object.hasOwn(out, "prompt_cache_miss_tokens")).toBe(false);
    // Nested details: unknown members dropped, a null-prototype object read like a plain one.
    const details = { prompt_tokens: 5, completion_tokens: 0, total_tokens: 5 };
    expect(
      agrees(OpenAIChatUsageSchema, {
        ...details,
        prompt_tokens_details: nullProto({ x: 1, cached_tokens: 2 }),
      }),
    ).toBe(true);
    // A wrapper member present as `undefined` is read (and kept) as the schema keeps it.
    expect(
      agrees(OpenAIChatResponseSchema, { usage: undefined, service_tier: undefined, x_groq: null }),
    ).toBe(true);
    expect(agrees(AnthropicMessageSchema, { usage: undefined })).toBe(true);
    // Gemini's modality lists and Anthropic's iterations: arrays of objects, copied.
    const gemini = {
      promptTokenCount: 10,
      promptTokensDetails: [{ modality: "AUDIO", tokenCount: 4, extra: true }, { tokenCount: undefined }, {}],
      serviceTier: "standard",
    };
    expect(agrees(GeminiUsageSchema, gemini)).toBe(true);
    expect(fastParse(GeminiUsageSchema, gemini)?.promptTokensDetails).not.toBe(gemini.promptTokensDetails);
  });

  it("leaves every malformed count to the schema (its message names the field)", () => {
    for (const bad of HOSTILE_NUMBERS.filter((v) => !(Object.is(v, -0) || v === null || v === undefined))) {
      const input = { prompt_tokens: 1, completion_tokens: bad, total_tokens: 1 };
      expect(fastParse(OpenAIChatUsageSchema, input)).toBeUndefined();
      expect(OpenAIChatUsageSchema.safeParse(input).success).toBe(false);
    }
    for (const missing of [
      {},
      { prompt_tokens: 1, completion_tokens: 1 },
      { prompt_tokens: 1, total_tokens: 1 },
    ]) {
      expect(fastParse(OpenAIChatUsageSchema, missing)).toBeUndefined();
      expect(OpenAIChatUsageSchema.safeParse(missing).success).toBe(false);
    }
    // Required members present as `undefined` or `null`, details that are arrays: refused by both.
    const base = { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 };
    for (const input of [
      { ...base, total_tokens: undefined },
      { ...base, total_tokens: null },
      { ...base, prompt_tokens_details: [] },
      { ...base, prompt_tokens_details: Object.setPrototypeOf([], null) },
      { ...base, prompt_tokens_details: { cached_tokens: "1" } },
    ]) {
      expect(fastParse(OpenAIChatUsageSchema, input)).toBeUndefined();
      expect(OpenAIChatUsageSchema.safeParse(input).success).toBe(false);
    }
    // The Images usage requires its input details, which may not be null.
    const images = { input_tokens: 1, output_tokens: 1, total_tokens: 2 };
    for (const input_tokens_details of [undefined, null]) {
      const input = { ...images, input_tokens_details };
      expect(fastParse(OpenAIImagesUsageSchema, input)).toBeUndefined();
      expect(OpenAIImagesUsageSchema.safeParse(input).success).toBe(false);
    }
    expect(agrees(OpenAIImagesUsageSchema, { ...images, input_tokens_details: {} })).toBe(true);
  });

  it("sends an object that is not plain to the schema (which reads it, inherited members too)", () => {
    const usage = { prompt_tokens: 1, completion_tokens: 0, total_tokens: 1 };
    for (const odd of [
      Object.assign(new Payload(), usage),
      Object.create(usage),
      Object.assign(new Date(0), usage),
    ]) {
      expect(fastParse(OpenAIChatUsageSchema, odd)).toBeUndefined();
      expect(OpenAIChatUsageSchema.safeParse(odd).success).toBe(true);
    }
  });

  it("isQuantity is exactly what QuantitySchema accepts, and the schema returns it unchanged", () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.anything(), fc.double(), fc.integer(), pick(...HOSTILE_NUMBERS, Number.MAX_SAFE_INTEGER)),
        (value) => {
          const parsed = QuantitySchema.safeParse(value);
          expect(isQuantity(value)).toBe(parsed.success);
          if (parsed.success) expect(Object.is(parsed.data, value)).toBe(true);
        },
      ),
      { numRuns: 5_000 },
    );
    for (const value of [0, -0, 1, Number.MAX_SAFE_INTEGER])
      expect(isQuantity(value) && QuantitySchema.safeParse(value).success).toBe(true);
    for (const value of HOSTILE_NUMBERS.filter((v) => !Object.is(v, -0)))
      expect(isQuantity(value) || QuantitySchema.safeParse(value).success).toBe(false);
  });
});

describe("schemas without a reader", () => {
  it("an object with a member built another way always goes to the schema", () => {
    const checked = object({ type: z.string().startsWith("response."), usage: optional(anyValue) });
    expect(fastParse(checked, { type: "response.completed" })).toBeUndefined();
    expect(checked.safeParse({ type: "response.completed" }).success).toBe(true);
    const nested = object({ inner: nullish(checked), n: optionalCount });
    expect(fastParse(nested, { n: 1 })).toBeUndefined();
    const listed = object({ items: list(checked) });
    expect(fastParse(listed, { items: [] })).toBeUndefined();
    // A shape with a symbol member or an own `__proto__` member (zod reads the one, skips the other).
    const symbolic = object({ n: optionalCount, [Symbol("s")]: optionalCount } as z.ZodRawShape);
    expect(fastParse(symbolic, { n: 1 })).toBeUndefined();
    const proto = object(
      Object.defineProperty({ n: optionalCount }, "__proto__", { value: optionalCount, enumerable: true }),
    );
    expect(fastParse(proto, { n: 1 })).toBeUndefined();
    expect(proto.safeParse({ n: 1 }).success).toBe(true);
    // Built here throughout, the same shapes are read fast.
    expect(fastParse(object({ type: anyString, n: optionalCount }), { type: "x" })).toEqual({ type: "x" });
  });
});

describe("fast readers against hostile objects", () => {
  it("copies exactly the member values it checked, even when an accessor answers differently later", () => {
    const chat = { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 };
    const gemini = { promptTokenCount: 3 };
    for (const reads of [1, 2, 3]) {
      for (const then of [-1, 1.5, "7", null, undefined, { cached_tokens: -1 }]) {
        returnsOnlyValid(OpenAIChatUsageSchema, flipping(chat, "total_tokens", 7, then, reads));
        returnsOnlyValid(
          OpenAIChatUsageSchema,
          flipping(chat, "prompt_tokens_details", { cached_tokens: 1 }, then, reads),
        );
        returnsOnlyValid(OpenAIChatUsageSchema, {
          ...chat,
          prompt_tokens_details: flipping({}, "cached_tokens", 1, then, reads),
        });
        returnsOnlyValid(GeminiUsageSchema, flipping(gemini, "promptTokenCount", 3, then, reads));
        returnsOnlyValid(GeminiUsageSchema, {
          ...gemini,
          cacheTokensDetails: [flipping({}, "tokenCount", 2, then, reads)],
        });
        returnsOnlyValid(AnthropicUsageSchema, {
          input_tokens: 1,
          output_tokens: 1,
          iterations: [flipping({ input_tokens: 1 }, "type", "compaction", then, reads)],
        });
      }
    }
  });

  it("takes a member a Proxy's `has` denies as absent, as zod does: an optional one left out, a required one refused", () => {
    const hiding = (value: object, hidden: string) =>
      new Proxy(value, { has: (target, key) => key !== hidden && Reflect.has(target, key) });
    const chat = () => ({
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 4 },
    });
    // zod's output has no details, so no cached tokens: the reader's must not have them either.
    expect(agrees(OpenAIChatUsageSchema, hiding(chat(), "prompt_tokens_details"))).toBe(true);
    expect(normalizeOpenAIChat(hiding(chat(), "prompt_tokens_details"))).toEqual(
      normalizeOpenAIChat({ prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 }),
    );
    // A required member zod finds absent: refused, by the schema, naming it.
    expect(fastParse(OpenAIChatUsageSchema, hiding(chat(), "total_tokens"))).toBeUndefined();
    expect(OpenAIChatUsageSchema.safeParse(hiding(chat(), "total_tokens")).success).toBe(false);
    expect(() => normalizeOpenAIChat(hiding(chat(), "total_tokens"))).toThrow(/total_tokens/);
    expect(fastParse(GeminiUsageSchema, hiding({ promptTokenCount: 3 }, "promptTokenCount"))).toBeUndefined();
    // In a list item too.
    const gemini = {
      promptTokenCount: 3,
      promptTokensDetails: [hiding({ modality: "AUDIO", tokenCount: 2 }, "tokenCount")],
    };
    expect(agrees(GeminiUsageSchema, gemini)).toBe(true);
  });

  it("reads each member once", () => {
    const reads: string[] = [];
    const usage = new Proxy(
      {
        prompt_tokens: 5,
        completion_tokens: 2,
        total_tokens: 7,
        prompt_tokens_details: { cached_tokens: 1 },
      },
      {
        get(target, key, receiver) {
          if (typeof key === "string") reads.push(key);
          return Reflect.get(target, key, receiver);
        },
      },
    );
    expect(fastParse(OpenAIChatUsageSchema, usage)).toEqual({
      prompt_tokens: 5,
      completion_tokens: 2,
      total_tokens: 7,
      prompt_tokens_details: { cached_tokens: 1 },
    });
    expect(reads.filter((k) => k === "prompt_tokens")).toHaveLength(1);
    expect(reads.filter((k) => k === "prompt_tokens_details")).toHaveLength(1);
    expect(new Set(reads).size).toBe(reads.length);
  });

  it("leaves a list whose items change between reads valid as it stands", () => {
    let n = 0;
    const items = new Proxy([{ modality: "AUDIO", tokenCount: 1 }], {
      get(target, key, receiver) {
        if (key === "0" && n++ > 0) return { tokenCount: -1 };
        return Reflect.get(target, key, receiver);
      },
    });
    returnsOnlyValid(GeminiUsageSchema, { promptTokenCount: 1, promptTokensDetails: items });
  });
});
