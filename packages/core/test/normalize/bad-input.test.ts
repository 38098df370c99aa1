import { describe, expect, it } from "vitest";
import type { MeterSet } from "../../src/index.js";
import { normalize } from "../../src/normalize/index.js";
import { validationError, validationPaths } from "./helpers.js";

type Normalizer = (usage: unknown) => MeterSet;
type Json = Record<string, unknown>;

interface Provider {
  name: keyof typeof normalize;
  subject: string;
  valid: Json;
  /** Count fields, by path (dots = nesting). */
  counts: string[];
  /** Fields whose absence is an error. */
  required: string[];
  /** Object-valued fields. */
  objects: string[];
}

const providers: Provider[] = [
  {
    name: "openaiChat",
    subject: "OpenAI chat usage",
    valid: {
      prompt_tokens: 100,
      completion_tokens: 50,
      total_tokens: 150,
      prompt_tokens_details: { cached_tokens: 10, cache_write_tokens: 7, audio_tokens: 5, image_tokens: 3 },
      completion_tokens_details: {
        reasoning_tokens: 20,
        audio_tokens: 5,
        accepted_prediction_tokens: 1,
        rejected_prediction_tokens: 1,
      },
    },
    counts: [
      "prompt_tokens",
      "completion_tokens",
      "total_tokens",
      "prompt_tokens_details.cached_tokens",
      "prompt_tokens_details.cache_write_tokens",
      "prompt_tokens_details.audio_tokens",
      "prompt_tokens_details.image_tokens",
      "completion_tokens_details.reasoning_tokens",
      "completion_tokens_details.audio_tokens",
      "completion_tokens_details.accepted_prediction_tokens",
      "completion_tokens_details.rejected_prediction_tokens",
    ],
    required: ["prompt_tokens", "completion_tokens", "total_tokens"],
    objects: ["prompt_tokens_details", "completion_tokens_details"],
  },
  {
    name: "openaiResponses",
    subject: "OpenAI Responses usage",
    valid: {
      input_tokens: 100,
      input_tokens_details: { cached_tokens: 10, cache_write_tokens: 5 },
      output_tokens: 50,
      output_tokens_details: { reasoning_tokens: 20 },
      total_tokens: 150,
    },
    counts: [
      "input_tokens",
      "output_tokens",
      "total_tokens",
      "input_tokens_details.cached_tokens",
      "input_tokens_details.cache_write_tokens",
      "output_tokens_details.reasoning_tokens",
    ],
    required: ["input_tokens", "output_tokens", "total_tokens"],
    objects: ["input_tokens_details", "output_tokens_details"],
  },
  {
    name: "anthropic",
    subject: "Anthropic usage",
    valid: {
      input_tokens: 100,
      output_tokens: 50,
      cache_read_input_tokens: 10,
      cache_creation_input_tokens: 30,
      cache_creation: { ephemeral_5m_input_tokens: 10, ephemeral_1h_input_tokens: 20 },
      server_tool_use: { web_search_requests: 2, web_fetch_requests: 1 },
      output_tokens_details: { thinking_tokens: 12 },
      iterations: [
        { type: "compaction", input_tokens: 40, output_tokens: 4, cache_read_input_tokens: 3 },
        { type: "message", input_tokens: 100, output_tokens: 50 },
      ],
    },
    counts: [
      "input_tokens",
      "output_tokens",
      "cache_read_input_tokens",
      "cache_creation_input_tokens",
      "cache_creation.ephemeral_5m_input_tokens",
      "cache_creation.ephemeral_1h_input_tokens",
      "server_tool_use.web_search_requests",
      "server_tool_use.web_fetch_requests",
      "output_tokens_details.thinking_tokens",
      "iterations.0.input_tokens",
      "iterations.0.output_tokens",
      "iterations.0.cache_read_input_tokens",
    ],
    required: ["input_tokens", "output_tokens"],
    objects: ["cache_creation", "server_tool_use", "output_tokens_details", "iterations.0"],
  },
  {
    name: "gemini",
    subject: "Gemini usage",
    valid: {
      promptTokenCount: 100,
      candidatesTokenCount: 50,
      thoughtsTokenCount: 20,
      cachedContentTokenCount: 10,
      toolUsePromptTokenCount: 5,
      totalTokenCount: 175,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: 90 },
        { modality: "AUDIO", tokenCount: 10 },
      ],
      cacheTokensDetails: [{ modality: "TEXT", tokenCount: 10 }],
      candidatesTokensDetails: [
        { modality: "TEXT", tokenCount: 40 },
        { modality: "IMAGE", tokenCount: 10 },
      ],
    },
    counts: [
      "promptTokenCount",
      "candidatesTokenCount",
      "thoughtsTokenCount",
      "cachedContentTokenCount",
      "toolUsePromptTokenCount",
      "totalTokenCount",
      "promptTokensDetails.1.tokenCount",
      "cacheTokensDetails.0.tokenCount",
      "candidatesTokensDetails.0.tokenCount",
      "candidatesTokensDetails.1.tokenCount",
    ],
    required: ["promptTokenCount"],
    objects: ["promptTokensDetails.0", "candidatesTokensDetails.0"],
  },
  {
    name: "openrouter",
    subject: "OpenRouter usage",
    valid: {
      prompt_tokens: 100,
      completion_tokens: 50,
      total_tokens: 150,
      cost: 0.5,
      prompt_tokens_details: { cached_tokens: 10, cache_write_tokens: 10, audio_tokens: 5 },
      completion_tokens_details: { reasoning_tokens: 20, audio_tokens: 5, image_tokens: 4 },
    },
    counts: [
      "prompt_tokens",
      "completion_tokens",
      "total_tokens",
      "prompt_tokens_details.cached_tokens",
      "prompt_tokens_details.cache_write_tokens",
      "prompt_tokens_details.audio_tokens",
      "completion_tokens_details.reasoning_tokens",
      "completion_tokens_details.audio_tokens",
      "completion_tokens_details.image_tokens",
    ],
    required: ["prompt_tokens", "completion_tokens", "total_tokens"],
    objects: ["prompt_tokens_details", "completion_tokens_details"],
  },
  {
    name: "openaiImages",
    subject: "OpenAI images usage",
    valid: {
      input_tokens: 50,
      input_tokens_details: { text_tokens: 10, image_tokens: 40 },
      output_tokens: 1300,
      output_tokens_details: { text_tokens: 10, image_tokens: 1290 },
      total_tokens: 1350,
    },
    counts: [
      "input_tokens",
      "output_tokens",
      "total_tokens",
      "input_tokens_details.text_tokens",
      "input_tokens_details.image_tokens",
      "output_tokens_details.text_tokens",
      "output_tokens_details.image_tokens",
    ],
    required: ["input_tokens", "output_tokens", "total_tokens", "input_tokens_details"],
    objects: ["input_tokens_details", "output_tokens_details"],
  },
];

/** A deep copy of `base` with the field at `path` set to `value` (or deleted when `value` is `DELETE`). */
const DELETE = Symbol("delete");
function withField(base: Json, path: string, value: unknown): Json {
  const copy = structuredClone(base);
  const keys = path.split(".");
  let target: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (value === DELETE) delete target[last];
  else target[last] = value;
  return copy;
}

const badCounts: Array<[label: string, value: unknown]> = [
  ["negative", -1],
  ["fractional", 1.5],
  ["NaN", Number.NaN],
  ["Infinity", Number.POSITIVE_INFINITY],
  ["a string", "12"],
  ["> 2^53-1", 2 ** 53],
  ["a boolean", true],
];

describe.each(providers)("$name: malformed input", (p) => {
  const fn: Normalizer = normalize[p.name];

  it("accepts the valid base payload", () => {
    expect(Object.keys(fn(p.valid)).length).toBeGreaterThan(0);
  });

  describe.each(p.counts)("count %s", (path) => {
    it.each(badCounts)("rejects %s with the field's path", (_label, value) => {
      const paths = validationPaths(() => fn(withField(p.valid, path, value)), p.subject);
      expect(paths).toContain(path);
      expect(new Set(paths)).toEqual(new Set([path]));
    });
  });

  it.each(p.required)("rejects a missing %s", (path) => {
    expect(validationPaths(() => fn(withField(p.valid, path, DELETE)), p.subject)).toEqual([path]);
  });

  it.each(p.required)("rejects a null %s", (path) => {
    expect(validationPaths(() => fn(withField(p.valid, path, null)), p.subject)).toEqual([path]);
  });

  it.each(p.objects)("rejects a non-object %s", (path) => {
    expect(validationPaths(() => fn(withField(p.valid, path, 7)), p.subject)).toEqual([path]);
  });

  it.each([
    ["a string", "usage"],
    ["null", null],
    ["undefined", undefined],
    ["a number", 42],
    ["an array", [1, 2]],
    ["a boolean", false],
  ])("rejects %s instead of an object at the root", (_label, value) => {
    const e = validationError(() => fn(value));
    expect(e.code).toBe("invalid_input");
    expect(e.subject).toBe(p.subject);
    expect(e.issues).toEqual([{ path: "", message: "expected an object" }]);
    expect(e.message).toBe(`Invalid ${p.subject}: (root): expected an object`);
  });

  it("never echoes received values in messages", () => {
    const secretish = 987654321.5;
    const path = p.counts[0]!;
    const e = validationError(() => fn(withField(p.valid, path, secretish)));
    expect(e.message).not.toContain("987654321");
    for (const issue of e.issues) expect(issue.message).not.toContain("987654321");
    const s = validationError(() => fn(withField(p.valid, path, "sk-not-a-number")));
    expect(s.message).not.toContain("sk-not-a-number");
    expect(JSON.stringify(s.issues)).not.toContain("sk-not-a-number");
  });

  it("reports every bad field at once", () => {
    const [a, b] = p.required.length >= 2 ? p.required : [p.counts[0]!, p.counts[1]!];
    const bad = withField(withField(p.valid, a!, -5), b!, "x");
    const paths = validationPaths(() => fn(bad), p.subject);
    expect(paths).toEqual(expect.arrayContaining([a, b]));
  });
});

describe("Gemini modality entries", () => {
  it("rejects a non-string modality", () => {
    const paths = validationPaths(
      () =>
        normalize.gemini({
          promptTokenCount: 5,
          promptTokensDetails: [{ modality: 3, tokenCount: 5 }],
        }),
      "Gemini usage",
    );
    expect(paths).toEqual(["promptTokensDetails.0.modality"]);
  });

  it("rejects a details field that is not an array", () => {
    const paths = validationPaths(
      () => normalize.gemini({ promptTokenCount: 5, candidatesTokensDetails: { modality: "TEXT" } }),
      "Gemini usage",
    );
    expect(paths).toEqual(["candidatesTokensDetails"]);
  });
});

describe("Anthropic iteration entries", () => {
  it("rejects a non-string iteration type and a non-array iterations", () => {
    expect(
      validationPaths(
        () => normalize.anthropic({ input_tokens: 1, output_tokens: 1, iterations: [{ type: 3 }] }),
        "Anthropic usage",
      ),
    ).toEqual(["iterations.0.type"]);
    expect(
      validationPaths(
        () => normalize.anthropic({ input_tokens: 1, output_tokens: 1, iterations: { type: "message" } }),
        "Anthropic usage",
      ),
    ).toEqual(["iterations"]);
  });

  it("rejects a non-string service_tier", () => {
    expect(
      validationPaths(
        () => normalize.anthropic({ input_tokens: 1, output_tokens: 1, service_tier: 1 }),
        "Anthropic usage",
      ),
    ).toEqual(["service_tier"]);
  });
});
