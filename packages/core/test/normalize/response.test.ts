import { describe, expect, it } from "vitest";
import {
  normalizeAnthropicResponse,
  normalizeGeminiResponse,
  normalizeOpenAIChatResponse,
  normalizeOpenAIImagesResponse,
  normalizeOpenAIResponsesResponse,
  normalizeOpenRouterResponse,
  normalizeResponse,
} from "../../src/normalize/index.js";
import { fixture, record, validationError, validationPaths } from "./helpers.js";

// Whole-response normalization: what sits outside `usage` (service tier, hosted tool calls)
// and usage another model bills. Fixtures name their public source in `_source`.

describe("normalizeResponse dispatch", () => {
  it("each api reads its own response shape", () => {
    expect(normalizeResponse("openaiChat", fixture("openai-chat.cache-write"))).toEqual(
      normalizeOpenAIChatResponse(fixture("openai-chat.cache-write")),
    );
    expect(normalizeResponse("openaiResponses", fixture("openai-responses.web-search"))).toEqual(
      normalizeOpenAIResponsesResponse(fixture("openai-responses.web-search")),
    );
    expect(normalizeResponse("anthropic", fixture("anthropic.web-search"))).toEqual(
      normalizeAnthropicResponse(fixture("anthropic.web-search")),
    );
    expect(normalizeResponse("gemini", fixture("gemini.image-output"))).toEqual(
      normalizeGeminiResponse(fixture("gemini.image-output")),
    );
    expect(normalizeResponse("openrouter", fixture("openrouter.image-output"))).toEqual(
      normalizeOpenRouterResponse(fixture("openrouter.image-output")),
    );
    expect(normalizeResponse("openaiImages", fixture("openai-images.generation"))).toEqual(
      normalizeOpenAIImagesResponse(fixture("openai-images.generation")),
    );
  });

  it("an unknown api is invalid_input naming api", () => {
    expect(validationPaths(() => normalizeResponse("bogus" as never, {}), "normalizeResponse")).toEqual([
      "api",
    ]);
  });
});

describe("service tiers", () => {
  it("OpenAI chat: service_tier is read, default → standard, priority as is", () => {
    expect(normalizeOpenAIChatResponse(fixture("openai-chat.cache-write")).serviceTier).toBe("priority");
    const body = { ...record(fixture("openai-chat.cache-write")), service_tier: "default" };
    expect(normalizeOpenAIChatResponse(body).serviceTier).toBe("standard");
  });

  it("Groq: on_demand (its standard tier) is standard", () => {
    const r = normalizeOpenAIChatResponse(fixture("openai-chat.groq-reasoning"));
    expect(r).toEqual({
      meters: { input_tokens: 17, output_tokens: 79, reasoning_tokens: 570 },
      serviceTier: "standard",
    });
  });

  it("OpenAI Responses: service_tier default → standard", () => {
    expect(normalizeOpenAIResponsesResponse(fixture("openai-responses.tool-usage")).serviceTier).toBe(
      "standard",
    );
  });

  it("Anthropic: usage.service_tier", () => {
    expect(normalizeAnthropicResponse(fixture("anthropic.web-fetch")).serviceTier).toBe("standard");
    const message = record(fixture("anthropic.web-fetch"));
    const priority = { ...message, usage: { ...record(message.usage), service_tier: "priority" } };
    expect(normalizeAnthropicResponse(priority).serviceTier).toBe("priority");
  });

  it("Gemini: usageMetadata.serviceTier", () => {
    expect(normalizeGeminiResponse(fixture("gemini.image-output"))).toEqual({
      meters: { input_tokens: 10, output_tokens: 272, image_output_tokens: 1120 },
      serviceTier: "standard",
    });
  });

  it("Vertex AI: usageMetadata.trafficType names the quota that served the call", () => {
    const usageMetadata = {
      promptTokenCount: 5,
      candidatesTokenCount: 1,
      thoughtsTokenCount: 100,
      totalTokenCount: 106,
    };
    const tier = (trafficType: string) =>
      normalizeGeminiResponse({ usageMetadata: { ...usageMetadata, trafficType } }).serviceTier;
    expect(tier("ON_DEMAND")).toBe("standard");
    expect(tier("ON_DEMAND_FLEX")).toBe("flex");
    expect(tier("ON_DEMAND_PRIORITY")).toBe("priority");
    // committed capacity, not a pay-as-you-go price: a tier of its own, never standard
    expect(tier("PROVISIONED_THROUGHPUT")).toBe("provisioned_throughput");
    expect(tier("TRAFFIC_TYPE_UNSPECIFIED")).toBeUndefined();
    // the Gemini API's own field wins where both are present
    const both = { usageMetadata: { ...usageMetadata, serviceTier: "priority", trafficType: "ON_DEMAND" } };
    expect(normalizeGeminiResponse(both).serviceTier).toBe("priority");
    const bad = { usageMetadata: { ...usageMetadata, trafficType: 3 } };
    expect(validationPaths(() => normalizeGeminiResponse(bad), "Gemini response")).toEqual([
      "usageMetadata.trafficType",
    ]);
  });

  it("service_tier auto names no tier (a request value): none is reported", () => {
    const body = record(fixture("openai-responses.web-search"));
    expect(normalizeOpenAIResponsesResponse({ ...body, service_tier: "auto" }).serviceTier).toBeUndefined();
    expect(normalizeOpenAIResponsesResponse({ ...body, service_tier: "flex" }).serviceTier).toBe("flex");
    const chat = record(fixture("openai-chat.cache-write"));
    expect(normalizeOpenAIChatResponse({ ...chat, service_tier: "auto" }).serviceTier).toBeUndefined();
    expect(normalizeOpenAIChatResponse({ ...chat, service_tier: "default" }).serviceTier).toBe("standard");
  });

  it("no tier reported ⇒ no serviceTier key", () => {
    expect("serviceTier" in normalizeOpenAIResponsesResponse(fixture("openai-responses.web-search"))).toBe(
      false,
    );
    expect("serviceTier" in normalizeOpenRouterResponse(fixture("openrouter.image-output"))).toBe(false);
  });
});

describe("OpenAI Responses hosted tools", () => {
  it("three web_search_call items (search, open_page, find_in_page) ⇒ three web search requests", () => {
    // input 19681 − 3712 cached = 15969; output 3773 − 3136 reasoning = 637; 3 items
    expect(normalizeOpenAIResponsesResponse(fixture("openai-responses.web-search"))).toEqual({
      meters: {
        input_tokens: 15969,
        cached_input_tokens: 3712,
        output_tokens: 637,
        reasoning_tokens: 3136,
        web_search_requests: 3,
      },
    });
  });

  it("tool_usage.web_search.num_requests is the billed count, over the visible items", () => {
    const body = record(fixture("openai-responses.web-search"));
    const withToolUsage = { ...body, tool_usage: { web_search: { num_requests: 5 } } };
    expect(normalizeOpenAIResponsesResponse(withToolUsage).meters.web_search_requests).toBe(5);
  });

  it("without tool_usage, each completed image_generation_call is one image of the tool's model, billed apart", () => {
    // input 1977; output 65 on the response model; output.0 is the image, on gpt-image-1
    expect(normalizeOpenAIResponsesResponse(fixture("openai-responses.image-generation-tool"))).toEqual({
      meters: { input_tokens: 1977, output_tokens: 65 },
      serviceTier: "standard",
      separatelyBilled: [
        { path: "output.0", kind: "image_generation", model: "gpt-image-1", meters: { image_count: 1 } },
      ],
    });
    // an image call that did not complete produced no image
    const body = record(fixture("openai-responses.image-generation-tool"));
    const failed = {
      ...body,
      output: (body.output as Array<Record<string, unknown>>).map((item, i) =>
        i === 0 ? { ...item, status: "failed" } : item,
      ),
    };
    expect(normalizeOpenAIResponsesResponse(failed).separatelyBilled).toBeUndefined();
  });

  it("inside a response.completed event, separately billed paths start with response.", () => {
    const event = { type: "response.completed", response: fixture("openai-responses.image-generation-tool") };
    expect(normalizeOpenAIResponsesResponse(event).separatelyBilled?.map((s) => s.path)).toEqual([
      "response.output.0",
    ]);
  });

  it("tool_usage.image_gen is billed on the tool's image model: separately, not as image_count", () => {
    const body = record(fixture("openai-responses.tool-usage"));
    const withImage = {
      ...body,
      output: [
        ...(body.output as unknown[]),
        { type: "image_generation_call", id: "ig_1", status: "completed" },
      ],
      tools: [{ type: "image_generation", model: "gpt-image-1-mini" }],
      tool_usage: {
        web_search: { num_requests: 0 },
        image_gen: {
          input_tokens: 30,
          input_tokens_details: { image_tokens: 0, text_tokens: 30 },
          output_tokens: 1056,
          output_tokens_details: { image_tokens: 1056, text_tokens: 0 },
          total_tokens: 1086,
        },
      },
    };
    expect(normalizeOpenAIResponsesResponse(withImage)).toEqual({
      meters: { input_tokens: 631, output_tokens: 84, reasoning_tokens: 55 },
      serviceTier: "standard",
      separatelyBilled: [
        {
          path: "tool_usage.image_gen",
          kind: "image_generation",
          model: "gpt-image-1-mini",
          meters: { input_tokens: 30, image_output_tokens: 1056 },
        },
      ],
    });
    // without a model on the tool, OpenAI's documented default bills it
    const noModel = { ...withImage, tools: [{ type: "image_generation" }] };
    expect(normalizeOpenAIResponsesResponse(noModel).separatelyBilled?.[0]?.model).toBe("gpt-image-1");
  });

  it("the response.completed streaming event is unwrapped; paths start with response.", () => {
    const event = fixture("openai-responses.stream-completed");
    expect(normalizeOpenAIResponsesResponse(event).meters).toEqual({
      input_tokens: 129,
      cached_input_tokens: 11904,
      output_tokens: 44,
    });
    const bad = { type: "response.completed", response: { usage: { input_tokens: -1 } } };
    expect(validationPaths(() => normalizeOpenAIResponsesResponse(bad), "OpenAI Responses response")).toEqual(
      expect.arrayContaining(["response.usage.input_tokens"]),
    );
  });

  it("an event's `type` is read once, by the schema: an accessor answering differently later changes nothing", () => {
    const inner = { usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } };
    const outer = { input_tokens: 100, output_tokens: 200, total_tokens: 300 };
    /** An event whose `type` answers `first` on its first read, then `then`; its own usage besides. */
    const flipping = (first: string, then: string) => {
      let reads = 0;
      return {
        get type() {
          return reads++ === 0 ? first : then;
        },
        response: inner,
        usage: outer,
      };
    };
    const asEvent = { meters: { input_tokens: 1, output_tokens: 2 } };
    const asResponse = { meters: { input_tokens: 100, output_tokens: 200 } };
    // The first read decides, as when the schema alone read it.
    expect(normalizeOpenAIResponsesResponse(flipping("response.completed", "x"))).toEqual(asEvent);
    expect(normalizeOpenAIResponsesResponse(flipping("x", "response.completed"))).toEqual(asResponse);
    // So for a `type` inherited, or a Proxy's.
    const heir = Object.assign(Object.create({ type: "response.completed" }), {
      response: inner,
      usage: outer,
    });
    expect(normalizeOpenAIResponsesResponse(heir)).toEqual(asEvent);
    let reads = 0;
    const proxy = new Proxy({ response: inner, usage: outer } as Record<string, unknown>, {
      get: (target, key, receiver) =>
        key === "type" ? (reads++ === 0 ? "response.done" : "y") : Reflect.get(target, key, receiver),
      has: (target, key) => key === "type" || Reflect.has(target, key),
    });
    expect(normalizeOpenAIResponsesResponse(proxy)).toEqual(asEvent);
    // A Proxy whose descriptor of `type` says one thing and its `get` another: the schema's read decides.
    const lying = new Proxy({ response: inner, usage: outer } as Record<string, unknown>, {
      get: (target, key, receiver) => (key === "type" ? "response.done" : Reflect.get(target, key, receiver)),
      has: (target, key) => key === "type" || Reflect.has(target, key),
      getOwnPropertyDescriptor: (target, key) =>
        key === "type"
          ? { value: "x", writable: true, enumerable: true, configurable: true }
          : Reflect.getOwnPropertyDescriptor(target, key),
    });
    expect(normalizeOpenAIResponsesResponse(lying)).toEqual(asEvent);
    // A plain Response object (no `type`) and a plain event read as before.
    expect(normalizeOpenAIResponsesResponse({ ...inner })).toEqual(asEvent);
    expect(normalizeOpenAIResponsesResponse({ type: "response.completed", response: inner })).toEqual(
      asEvent,
    );
    expect(normalizeOpenAIResponsesResponse({ type: "message", ...inner })).toEqual(asEvent);
  });
});

describe("OpenAI chat and Groq bodies", () => {
  it("Groq stream chunk with usage only under x_groq", () => {
    expect(normalizeOpenAIChatResponse(fixture("openai-chat.groq-x-groq-usage"))).toEqual({
      meters: { input_tokens: 18, output_tokens: 439 },
    });
  });

  it("top-level usage wins when both are there", () => {
    expect(normalizeOpenAIChatResponse(fixture("openai-chat.groq-stream-final-chunk")).meters).toEqual({
      input_tokens: 45,
      output_tokens: 662,
    });
  });

  it("x_groq usage errors are named under x_groq.usage", () => {
    const bad = { x_groq: { usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 3 } } };
    expect(validationPaths(() => normalizeOpenAIChatResponse(bad), "OpenAI chat response")).toEqual([
      "x_groq.usage.total_tokens",
    ]);
  });
});

describe("usage billed at another model's rates", () => {
  it("Anthropic advisor: the advisor iteration is returned apart with its model", () => {
    expect(normalizeAnthropicResponse(fixture("anthropic.advisor"))).toEqual({
      meters: { input_tokens: 2414, output_tokens: 3200 },
      serviceTier: "standard",
      separatelyBilled: [
        {
          path: "usage.iterations.1",
          kind: "advisor",
          model: "claude-opus-4-7",
          meters: { input_tokens: 2728, output_tokens: 874 },
        },
      ],
    });
  });

  it("Anthropic fallback declined before output: nothing billed apart", () => {
    expect(normalizeAnthropicResponse(fixture("anthropic.fallback"))).toEqual({
      meters: { input_tokens: 412, output_tokens: 264 },
    });
  });

  it("Anthropic fallback declined mid-output: the declined attempt is billed at its model", () => {
    const message = record(fixture("anthropic.fallback"));
    const usage = record(message.usage);
    const iterations = (usage.iterations as Array<Record<string, unknown>>).map((it) =>
      it.type === "message" ? { ...it, output_tokens: 50 } : it,
    );
    const r = normalizeAnthropicResponse({ ...message, usage: { ...usage, iterations } });
    expect(r.meters).toEqual({ input_tokens: 412, output_tokens: 264 });
    expect(r.separatelyBilled).toEqual([
      {
        path: "usage.iterations.0",
        kind: "declined_attempt",
        model: "claude-fable-5",
        meters: { input_tokens: 408, output_tokens: 50 },
      },
    ]);
  });

  it("an unknown iteration type is rejected, not guessed", () => {
    const e = validationError(() =>
      normalizeAnthropicResponse({
        usage: { input_tokens: 1, output_tokens: 1, iterations: [{ type: "teleport", input_tokens: 5 }] },
      }),
    );
    expect(e.subject).toBe("Anthropic response");
    expect(e.issues).toEqual([
      {
        path: "usage.iterations.0.type",
        message: "unknown iteration type: Latch does not know how Anthropic bills it",
      },
    ]);
  });

  it("an advisor iteration without its model is rejected at its model field", () => {
    const paths = validationPaths(
      () =>
        normalizeAnthropicResponse({
          usage: {
            input_tokens: 1,
            output_tokens: 1,
            iterations: [{ type: "advisor_message", input_tokens: 5 }],
          },
        }),
      "Anthropic response",
    );
    expect(paths).toEqual(["usage.iterations.0.model"]);
  });
});

describe("OpenAI Images API bodies", () => {
  it("GPT image models: token meters from usage", () => {
    expect(normalizeOpenAIImagesResponse(fixture("openai-images.generation"))).toEqual({
      meters: { input_tokens: 10, image_input_tokens: 40, image_output_tokens: 50 },
    });
  });

  it("DALL·E (no usage): one image_count per data entry", () => {
    expect(normalizeOpenAIImagesResponse(fixture("openai-images.dall-e"))).toEqual({
      meters: { image_count: 1 },
    });
  });

  it("neither usage nor data is invalid_input naming data", () => {
    expect(
      validationPaths(() => normalizeOpenAIImagesResponse({ created: 1 }), "OpenAI images response"),
    ).toEqual(["data"]);
  });
});

describe("bad bodies name the field", () => {
  it.each([
    ["openaiChat", "OpenAI chat response"],
    ["openaiResponses", "OpenAI Responses response"],
    ["anthropic", "Anthropic response"],
    ["gemini", "Gemini response"],
    ["openrouter", "OpenRouter response"],
    ["openaiImages", "OpenAI images response"],
  ] as const)("%s: a non-object body is (root)", (api, subject) => {
    const e = validationError(() => normalizeResponse(api, 42));
    expect(e.subject).toBe(subject);
    expect(e.issues).toEqual([{ path: "", message: "expected an object" }]);
  });

  it("a missing usage is reported at usage (usageMetadata for Gemini)", () => {
    expect(validationPaths(() => normalizeResponse("openaiChat", {}), "OpenAI chat response")).toEqual([
      "usage",
    ]);
    expect(validationPaths(() => normalizeResponse("anthropic", { id: "m" }), "Anthropic response")).toEqual([
      "usage",
    ]);
    expect(validationPaths(() => normalizeResponse("gemini", {}), "Gemini response")).toEqual([
      "usageMetadata",
    ]);
  });

  it("a non-string service_tier and a non-array output are named", () => {
    const body = record(fixture("openai-responses.web-search"));
    expect(
      validationPaths(
        () => normalizeOpenAIResponsesResponse({ ...body, service_tier: 3, output: "x" }),
        "OpenAI Responses response",
      ).sort(),
    ).toEqual(["output", "service_tier"]);
  });
});
