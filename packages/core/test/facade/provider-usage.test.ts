import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createLatch } from "../../src/facade/create-latch.js";
import { toObservation } from "../../src/facade/provider-usage.js";
import type { AnthropicMessage } from "../../src/facade/provider-usage-types.js";
import {
  LatchValidationError,
  type PriceSnapshot,
  type PricingSource,
  type UsageObservationInput,
} from "../../src/index.js";
import { MemoryObservationStore, MemoryRatedRecordStore } from "../../src/memory/index.js";
import { thrown } from "../support.js";

/** A provider fixture (test/fixtures/providers, sources noted in each file's `_source`). */
function fixture<T = Record<string, unknown>>(name: string): NoInfer<T> {
  return JSON.parse(readFileSync(new URL(`../fixtures/providers/${name}.json`, import.meta.url), "utf8"));
}

const gpt5mini: PriceSnapshot = {
  snapshotId: "gpt-5-mini:2026",
  model: { billableModel: "gpt-5-mini" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: {
    input_tokens: { perMillion: "0.25" },
    cached_input_tokens: { perMillion: "0.025" },
    output_tokens: { perMillion: "2" },
    reasoning_tokens: { as: "output_tokens" },
    web_search_requests: { perUnit: "0.01" },
    "custom:moderation_calls": { perUnit: "0.001" },
  },
};

/** Resolves by model name only, so these tests do not depend on how tiers pick snapshots. */
const pricing: PricingSource = {
  resolve: async (model) => (model.billableModel === "gpt-5-mini" ? gpt5mini : undefined),
};

/** The observation around a payload: no meters of its own unless a test adds some. */
const around = (i: number, extra: Partial<UsageObservationInput> = {}) => {
  const { meters: _omitted, ...rest }: UsageObservationInput = {
    eventId: `req-${i}:0:openai`,
    subject: { tenantId: "acme" },
    meters: {},
    model: { billableModel: "gpt-5-mini" },
    provider: { providerId: "openai" },
    source: { kind: "provider_reported" },
    outcome: { kind: "success" },
    timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T12:00:01Z" },
  };
  return { ...rest, ...extra };
};

const chatUsage = { prompt_tokens: 1000, completion_tokens: 100, total_tokens: 1100 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-provider-usage-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function setup() {
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const latch = createLatch({
    observations,
    rated,
    pricing,
    clock: () => new Date("2026-03-01T12:00:05Z"),
    spoolPath: join(dir, "spool.jsonl"),
    onWarning: () => {},
  });
  return { latch, observations, rated };
}

/** The `invalid_input` paths `fn` throws. */
function paths(fn: () => unknown): string[] {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(LatchValidationError);
  return (e as LatchValidationError).issues.map((i) => i.path);
}

describe("record({ api, response })", () => {
  it("rates a whole Responses body: web search calls outside usage are billed", async () => {
    const { latch, observations } = setup();
    const result = await latch.record({
      api: "openaiResponses",
      response: fixture("openai-responses.web-search"),
      observation: around(1),
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    // 15969 × 0.25 + 3712 × 0.025 + (637 + 3136) × 2 = 11631.05 µ$ = 0.01163105; + 3 × 0.01
    expect(result.record.total).toBe("0.04163105");
    expect((await observations.get("req-1:0:openai"))?.meters).toEqual({
      input_tokens: 15969,
      cached_input_tokens: 3712,
      output_tokens: 637,
      reasoning_tokens: 3136,
      web_search_requests: 3,
    });
  });

  it("a bad body is invalid_input naming the field under response., and stores nothing", async () => {
    const { latch, observations } = setup();
    const response = { usage: { ...chatUsage, prompt_tokens_details: { cached_tokens: 1001 } } };
    await expect(latch.record({ api: "openaiChat", response, observation: around(2) })).rejects.toMatchObject(
      {
        code: "invalid_input",
        issues: [{ path: "response.usage.prompt_tokens_details.cached_tokens" }],
      },
    );
    expect(await observations.get("req-2:0:openai")).toBeUndefined();
  });

  it("exactly one of usage or response", () => {
    expect(
      paths(() =>
        toObservation({ api: "openaiChat", usage: chatUsage, response: {}, observation: around(3) } as never),
      ),
    ).toEqual(["usage"]);
    expect(paths(() => toObservation({ api: "openaiChat", observation: around(3) } as never))).toEqual([
      "usage",
    ]);
  });
});

describe("caller meters are merged with the normalized ones", () => {
  it("a meter the payload does not carry is added", async () => {
    const { latch, observations } = setup();
    const result = await latch.record({
      api: "openaiChat",
      usage: chatUsage,
      observation: around(4, { meters: { "custom:moderation_calls": 2 } }),
    });
    expect(result.status).toBe("rated");
    if (result.status !== "rated") return;
    // 1000 × 0.25 + 100 × 2 = 450 µ$ = 0.00045; + 2 × 0.001 = 0.00245
    expect(result.record.total).toBe("0.00245");
    expect((await observations.get("req-4:0:openai"))?.meters).toEqual({
      input_tokens: 1000,
      output_tokens: 100,
      "custom:moderation_calls": 2,
    });
  });

  it("a meter given twice is invalid_input naming observation.meters.<meter>; nothing is stored", async () => {
    const { latch, observations } = setup();
    await expect(
      latch.record({
        api: "openaiChat",
        usage: chatUsage,
        observation: around(5, { meters: { input_tokens: 1000, "custom:moderation_calls": 1 } }),
      }),
    ).rejects.toMatchObject({
      code: "invalid_input",
      issues: [
        {
          path: "observation.meters.input_tokens",
          message: "also given by the provider payload: a meter is counted once",
        },
      ],
    });
    expect(await observations.get("req-5:0:openai")).toBeUndefined();
  });

  it("a web search count given by the caller AND read from the response is a duplicate too", () => {
    expect(
      paths(() =>
        toObservation({
          api: "openaiResponses",
          response: fixture("openai-responses.web-search"),
          observation: around(6, { meters: { web_search_requests: 3 } }),
        }),
      ),
    ).toEqual(["observation.meters.web_search_requests"]);
  });

  it("a meter the normalizer omits as zero may be given by the caller", () => {
    const obs = toObservation({
      api: "openaiChat",
      usage: chatUsage,
      observation: around(7, { meters: { cached_input_tokens: 0 } }),
    });
    expect(obs.meters).toEqual({ input_tokens: 1000, output_tokens: 100, cached_input_tokens: 0 });
  });

  it("a token meter the normalizer omits as zero, given non-zero by the caller, is refused: the payload's tokens are complete", async () => {
    // All 1,000 prompt tokens were cache reads: the normalizer gives no input_tokens. A caller
    // adding prompt_tokens as input_tokens would bill the same 1,000 tokens twice.
    const cachedAll = {
      prompt_tokens: 1000,
      completion_tokens: 100,
      total_tokens: 1100,
      prompt_tokens_details: { cached_tokens: 1000 },
    };
    const { latch, observations } = setup();
    await expect(
      latch.record({
        api: "openaiChat",
        usage: cachedAll,
        observation: around(9, { meters: { input_tokens: 1000 } }),
      }),
    ).rejects.toMatchObject({ code: "invalid_input", issues: [{ path: "observation.meters.input_tokens" }] });
    expect(await observations.get("req-9:0:openai")).toBeUndefined();
    // Anthropic's output_tokens already include thinking: reasoning_tokens beside it is the same tokens.
    expect(
      paths(() =>
        toObservation({
          api: "anthropic",
          usage: { input_tokens: 10, output_tokens: 1000, output_tokens_details: { thinking_tokens: 800 } },
          observation: around(10, { meters: { reasoning_tokens: 800 } }),
        }),
      ),
    ).toEqual(["observation.meters.reasoning_tokens"]);
    // gpt-image usage counts the generated images as image_output_tokens: an image_count beside it bills them twice.
    expect(
      paths(() =>
        toObservation({
          api: "openaiImages",
          usage: {
            input_tokens: 10,
            output_tokens: 1056,
            total_tokens: 1066,
            input_tokens_details: { text_tokens: 10, image_tokens: 0 },
          },
          observation: around(11, { meters: { image_count: 1 } }),
        }),
      ),
    ).toEqual(["observation.meters.image_count"]);
  });

  it("caller meters are still validated, with their usual paths", () => {
    expect(
      paths(() =>
        toObservation({
          api: "openaiChat",
          usage: chatUsage,
          observation: around(8, { meters: { "custom:x": -1 } }),
        }),
      ),
    ).toEqual(["meters.custom:x"]);
    expect(
      paths(() =>
        toObservation({
          api: "openaiChat",
          usage: chatUsage,
          observation: around(8, { meters: 7 as never }),
        }),
      ),
    ).toEqual(["observation.meters"]);
  });
});

describe("service tier read from the response", () => {
  const chatResponse = (tier: string | undefined) => ({
    usage: chatUsage,
    ...(tier === undefined ? {} : { service_tier: tier }),
  });

  it("sets observation.model.tier", async () => {
    const { latch, observations } = setup();
    await latch.record({ api: "openaiChat", response: chatResponse("priority"), observation: around(10) });
    expect((await observations.get("req-10:0:openai"))?.model).toEqual({
      billableModel: "gpt-5-mini",
      tier: "priority",
    });
  });

  it("default is stored as standard", () => {
    const obs = toObservation({
      api: "openaiChat",
      response: chatResponse("default"),
      observation: around(11),
    });
    expect(obs.model.tier).toBe("standard");
  });

  it("a caller tier that agrees (by canonical name) is fine", () => {
    const obs = toObservation({
      api: "openaiChat",
      response: chatResponse("default"),
      observation: around(12, { model: { billableModel: "gpt-5-mini", tier: "default" } }),
    });
    expect(obs.model.tier).toBe("standard");
  });

  it("a caller tier that disagrees is invalid_input naming observation.model.tier; nothing is stored", async () => {
    const { latch, observations } = setup();
    await expect(
      latch.record({
        api: "openaiChat",
        response: chatResponse("priority"),
        observation: around(13, { model: { billableModel: "gpt-5-mini", tier: "flex" } }),
      }),
    ).rejects.toMatchObject({
      code: "invalid_input",
      issues: [
        { path: "observation.model.tier", message: "disagrees with the service tier the provider reports" },
      ],
    });
    expect(await observations.get("req-13:0:openai")).toBeUndefined();
  });

  it("a declared batch stands over the standard tier a batch result reports", () => {
    const obs = toObservation({
      api: "openaiChat",
      response: chatResponse("default"),
      observation: around(14, { model: { billableModel: "gpt-5-mini", tier: "batch" } }),
    });
    expect(obs.model.tier).toBe("batch");
  });

  it("no tier in the response leaves the caller's model as given", () => {
    const obs = toObservation({
      api: "openaiChat",
      response: chatResponse(undefined),
      observation: around(15, { model: { billableModel: "gpt-5-mini", tier: "flex" } }),
    });
    expect(obs.model.tier).toBe("flex");
    expect(toObservation({ api: "openaiChat", usage: chatUsage, observation: around(15) }).model).toEqual({
      billableModel: "gpt-5-mini",
    });
  });

  it("Anthropic's tier sits in usage, so the usage form reads it too", () => {
    const obs = toObservation({
      api: "anthropic",
      usage: { input_tokens: 10, output_tokens: 5, service_tier: "priority" },
      observation: around(16, { model: { billableModel: "claude-sonnet-4-6" } }),
    });
    expect(obs.model.tier).toBe("priority");
    expect(obs.meters).toEqual({ input_tokens: 10, output_tokens: 5 });
  });
});

describe("usage billed at another model's rates", () => {
  it("an Anthropic advisor response is refused, naming the iteration; nothing is stored", async () => {
    const { latch, observations } = setup();
    const observation = around(20, { model: { billableModel: "claude-sonnet-4-6" } });
    const e = await latch
      .record({ api: "anthropic", response: fixture<AnthropicMessage>("anthropic.advisor"), observation })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues).toEqual([
      {
        path: "response.usage.iterations.1",
        message:
          "billed at another model's rates (advisor): record the payload in parts, normalizeResponse().meters as this call and each of its separatelyBilled entries as its own observation",
      },
    ]);
    expect(await observations.get("req-20:0:openai")).toBeUndefined();
  });

  it("an OpenAI Responses image generation is refused at each completed image (the image model bills it)", () => {
    expect(
      paths(() =>
        toObservation({
          api: "openaiResponses",
          response: fixture("openai-responses.image-generation-tool"),
          observation: around(23),
        }),
      ),
    ).toEqual(["response.output.0"]);
  });

  it("the usage form names it under usage.", () => {
    const usage = fixture<AnthropicMessage>("anthropic.advisor").usage;
    expect(
      paths(() =>
        toObservation({
          api: "anthropic",
          usage,
          observation: around(21, { model: { billableModel: "claude-sonnet-4-6" } }),
        }),
      ),
    ).toEqual(["usage.iterations.1"]);
  });

  it("a compaction response is recorded whole: the compaction turn is billed on the call", () => {
    const obs = toObservation({
      api: "anthropic",
      response: fixture<AnthropicMessage>("anthropic.compaction"),
      observation: around(22, { model: { billableModel: "claude-opus-4-6" } }),
    });
    expect(obs.meters).toEqual({ input_tokens: 61067, output_tokens: 1912 });
    expect(obs.model.tier).toBe("standard");
  });
});
