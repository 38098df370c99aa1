import { describe, expect, it } from "vitest";
import type { MeterSet } from "../../src/index.js";
import { normalize } from "../../src/normalize/index.js";
import { TOKEN_METERS } from "../../src/schemas/meters.js";
import { at, fixture } from "./helpers.js";

// Goldens for the meters and payload shapes added in 2026-12: cache writes on OpenAI-shaped
// APIs, image tokens, server-side tool requests, Anthropic iterations, and OpenAI-compatible
// variants (DeepSeek, Groq, xAI). Each fixture names its public source and licence in `_source`;
// every expectation below is worked out by hand from the payload.

const tokenSum = (m: MeterSet) => TOKEN_METERS.reduce((acc, k) => acc + (m[k] ?? 0), 0);

describe("cache writes on OpenAI-shaped APIs", () => {
  it("Chat Completions: reads, writes and the rest are disjoint parts of prompt_tokens", () => {
    // OpenAI's guide: 2,000 read + 400 written + 200 neither = 2,600 prompt tokens
    // output 300 − 120 reasoning = 180; 200 + 2000 + 400 + 180 + 120 = 2900 = total_tokens
    const m = normalize.openaiChat(at(fixture("openai-chat.cache-write"), "usage"));
    expect(m).toEqual({
      input_tokens: 200,
      cached_input_tokens: 2000,
      cache_write_tokens: 400,
      output_tokens: 180,
      reasoning_tokens: 120,
    });
    expect(tokenSum(m)).toBe(2900);
  });

  it("Responses, cold write: 3,438 input = 3,435 written + 3 uncached", () => {
    const m = normalize.openaiResponses(at(fixture("openai-responses.cache-write"), "cold", "usage"));
    expect(m).toEqual({ input_tokens: 3, cache_write_tokens: 3435, output_tokens: 52 });
    expect(tokenSum(m)).toBe(3490);
  });

  it("Responses, warm read: 3,438 input = 3,423 read + 12 written + 3 uncached", () => {
    const m = normalize.openaiResponses(at(fixture("openai-responses.cache-write"), "warm", "usage"));
    expect(m).toEqual({
      input_tokens: 3,
      cached_input_tokens: 3423,
      cache_write_tokens: 12,
      output_tokens: 52,
    });
    expect(tokenSum(m)).toBe(3490);
  });

  it("Responses, recorded gpt-5.6-sol: cache_write_tokens 0 changes nothing", () => {
    // input 631; output 139 − 55 reasoning = 84
    const m = normalize.openaiResponses(at(fixture("openai-responses.tool-usage"), "usage"));
    expect(m).toEqual({ input_tokens: 631, output_tokens: 84, reasoning_tokens: 55 });
  });

  it("OpenRouter, Gemini explicit cache: writes counted beside prompt_tokens, both billed", () => {
    // reads 4,200 + writes 4,200 > prompt 5,000 ⇒ writes sit beside the prompt split:
    // input 5000 − 4200 = 800; cached 4200; cache_write 4200; output 200
    const m = normalize.openrouter(at(fixture("openrouter.gemini-explicit-cache"), "usage"));
    expect(m).toEqual({
      input_tokens: 800,
      cached_input_tokens: 4200,
      cache_write_tokens: 4200,
      output_tokens: 200,
    });
    // the token meters sum to total_tokens + cache_write_tokens: 5200 + 4200
    expect(tokenSum(m)).toBe(9400);
  });

  it("OpenRouter, Anthropic-style write inside prompt_tokens stays taken out of input", () => {
    // 3214 − 0 read − 3100 written = 114 (fits inside prompt_tokens)
    const m = normalize.openrouter(at(fixture("openrouter.stream-final-chunk"), "usage"));
    expect(m).toEqual({ input_tokens: 114, cache_write_tokens: 3100, output_tokens: 187 });
  });
});

describe("image tokens", () => {
  it("Gemini: IMAGE in candidatesTokensDetails is image output; the rest of candidates is text", () => {
    // candidates 1392 = 1120 IMAGE + 272 text (not listed); prompt 10; 10 + 272 + 1120 = 1402 total
    const m = normalize.gemini(at(fixture("gemini.image-output"), "usageMetadata"));
    expect(m).toEqual({ input_tokens: 10, output_tokens: 272, image_output_tokens: 1120 });
    expect(tokenSum(m)).toBe(1402);
  });

  it("Gemini: image INPUT stays in input_tokens (Google bills it at the text rate)", () => {
    const m = normalize.gemini({
      promptTokenCount: 615,
      candidatesTokenCount: 1290,
      totalTokenCount: 1905,
      promptTokensDetails: [
        { modality: "IMAGE", tokenCount: 516 },
        { modality: "TEXT", tokenCount: 99 },
      ],
      candidatesTokensDetails: [{ modality: "IMAGE", tokenCount: 1290 }],
    });
    expect(m).toEqual({ input_tokens: 615, image_output_tokens: 1290 });
  });

  it("OpenRouter: completion_tokens_details.image_tokens, and the payload's own cost agrees", () => {
    // completion 1299 = 1290 image + 9 text; prompt 6
    const payload = fixture("openrouter.image-output");
    const m = normalize.openrouter(at(payload, "usage"));
    expect(m).toEqual({ input_tokens: 6, output_tokens: 9, image_output_tokens: 1290 });
    // google/gemini-2.5-flash-image at $0.30 / $2.50 / $30 per MTok, in units of 1e-8 USD per token:
    // 6 × 30 + 9 × 250 + 1290 × 3000 = 3,872,430 ⇒ $0.0387243, the `cost` OpenRouter reports
    const cents8 = 6 * 30 + (m.output_tokens ?? 0) * 250 + (m.image_output_tokens ?? 0) * 3000;
    expect(cents8).toBe(3_872_430);
    expect(at(payload, "usage", "cost")).toBe(0.0387243);
  });

  it("OpenAI Images API (gpt-image-1): text input, image input and image output apart", () => {
    // input 50 = 10 text + 40 image; no output details ⇒ all 50 output tokens are image tokens
    const m = normalize.openaiImages(at(fixture("openai-images.generation"), "usage"));
    expect(m).toEqual({ input_tokens: 10, image_input_tokens: 40, image_output_tokens: 50 });
    expect(tokenSum(m)).toBe(100);
  });

  it("OpenAI Images API with output details: text output is output_tokens", () => {
    const m = normalize.openaiImages({
      input_tokens: 50,
      input_tokens_details: { image_tokens: 0, text_tokens: 50 },
      output_tokens: 1300,
      output_tokens_details: { image_tokens: 1290, text_tokens: 10 },
      total_tokens: 1350,
    });
    expect(m).toEqual({ input_tokens: 50, output_tokens: 10, image_output_tokens: 1290 });
  });
});

describe("server-side tools (Anthropic server_tool_use)", () => {
  it("web search requests are counted, tokens unchanged", () => {
    // input 27118; output 600; 2 searches
    const m = normalize.anthropic(at(fixture("anthropic.web-search"), "usage"));
    expect(m).toEqual({ input_tokens: 27118, output_tokens: 600, web_search_requests: 2 });
  });

  it("web fetch requests are counted apart", () => {
    const m = normalize.anthropic(at(fixture("anthropic.web-fetch"), "usage"));
    expect(m).toEqual({ input_tokens: 7204, output_tokens: 162, web_fetch_requests: 1 });
  });

  it("Anthropic's pricing-page example: 105 input, 7,123 read, 7,345 written, 6,039 output, 1 search", () => {
    const m = normalize.anthropic({
      input_tokens: 105,
      output_tokens: 6039,
      cache_read_input_tokens: 7123,
      cache_creation_input_tokens: 7345,
      server_tool_use: { web_search_requests: 1 },
    });
    expect(m).toEqual({
      input_tokens: 105,
      cached_input_tokens: 7123,
      cache_write_tokens: 7345,
      output_tokens: 6039,
      web_search_requests: 1,
    });
  });
});

describe("server-side tools (OpenRouter server_tool_use_details)", () => {
  // Recorded openai/gpt-4.1-mini call with web search (pydantic-ai cassette
  // test_openrouter_web_search_tool_usage, MIT): the usage object as OpenRouter sent it.
  const usage = {
    prompt_tokens: 8174,
    completion_tokens: 30,
    total_tokens: 8204,
    prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0, audio_tokens: 0, video_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, image_tokens: 0 },
    server_tool_use_details: { web_search_requests: 1 },
    cost: 0.0133176,
    cost_details: {
      upstream_inference_cost: 0.0133176,
      upstream_inference_prompt_cost: 0.0032696,
      upstream_inference_completions_cost: 0.000048,
    },
  };

  it("web_search_requests is metered, and OpenRouter's own cost agrees", () => {
    const m = normalize.openrouter(usage);
    expect(m).toEqual({ input_tokens: 8174, output_tokens: 30, web_search_requests: 1 });
    // $0.40 / $1.60 per MTok and $10 per 1,000 searches, in units of 1e-7 USD:
    // 8174 × 4 + 30 × 16 + 1 × 100,000 = 133,176 ⇒ $0.0133176, the `cost` OpenRouter reports
    const units7 =
      (m.input_tokens ?? 0) * 4 + (m.output_tokens ?? 0) * 16 + (m.web_search_requests ?? 0) * 100_000;
    expect(units7).toBe(133_176);
    expect(usage.cost).toBe(0.0133176);
  });

  it("tool_calls_requested / tool_calls_executed are not added (they already count the searches)", () => {
    const both = {
      ...usage,
      server_tool_use_details: { web_search_requests: 1, tool_calls_requested: 1, tool_calls_executed: 1 },
    };
    expect(normalize.openrouter(both)).toEqual({
      input_tokens: 8174,
      output_tokens: 30,
      web_search_requests: 1,
    });
    const advisorOnly = {
      ...usage,
      server_tool_use_details: { tool_calls_requested: 1, tool_calls_executed: 1 },
    };
    expect(normalize.openrouter(advisorOnly)).toEqual({ input_tokens: 8174, output_tokens: 30 });
  });

  it("a malformed search count is refused at its path", () => {
    const bad = { ...usage, server_tool_use_details: { web_search_requests: 1.5 } };
    expect(() => normalize.openrouter(bad)).toThrow(/server_tool_use_details\.web_search_requests/);
  });
});

describe("Anthropic iterations", () => {
  it("compaction iterations are ADDED to the top-level counts (which exclude them)", () => {
    // top level (= the message iteration) 682 in / 1320 out; compaction 60385 in / 592 out
    // input 682 + 60385 = 61067; output 1320 + 592 = 1912
    const m = normalize.anthropic(at(fixture("anthropic.compaction"), "usage"));
    expect(m).toEqual({ input_tokens: 61067, output_tokens: 1912 });
  });

  it("advisor iterations are not in the call's meters (another model bills them)", () => {
    // top level 2414 in (1051 + 1363 executor turns) / 3200 out (35 + 3165); advisor apart
    const m = normalize.anthropic(at(fixture("anthropic.advisor"), "usage"));
    expect(m).toEqual({ input_tokens: 2414, output_tokens: 3200 });
  });

  it("a fallback's declined attempt that produced no output is free; the top level is the serving model", () => {
    const m = normalize.anthropic(at(fixture("anthropic.fallback"), "usage"));
    expect(m).toEqual({ input_tokens: 412, output_tokens: 264 });
  });

  it("compaction iterations carry their own cache reads and TTL-split writes", () => {
    const m = normalize.anthropic({
      input_tokens: 10,
      output_tokens: 20,
      cache_read_input_tokens: 100,
      iterations: [
        {
          type: "compaction",
          input_tokens: 1000,
          output_tokens: 50,
          cache_read_input_tokens: 400,
          cache_creation_input_tokens: 300,
          cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
        },
        { type: "message", input_tokens: 10, output_tokens: 20, cache_read_input_tokens: 100 },
      ],
    });
    // input 10 + 1000; read 100 + 400; writes 100 (5m) + 200 (1h); output 20 + 50
    expect(m).toEqual({
      input_tokens: 1010,
      cached_input_tokens: 500,
      cache_write_tokens: 100,
      cache_write_1h_tokens: 200,
      output_tokens: 70,
    });
  });

  it("thinking_tokens is info only: it stays inside output_tokens", () => {
    // output 1699 includes 139 thinking tokens: nothing moves to reasoning_tokens
    const m = normalize.anthropic(at(fixture("anthropic.thinking-tokens"), "usage"));
    expect(m).toEqual({ input_tokens: 51, output_tokens: 1699 });
  });
});

describe("OpenAI-compatible variants", () => {
  it("DeepSeek: hits are cache reads, misses are uncached input", () => {
    // prompt 495 = 320 hit + 175 miss; completion 144 − 118 reasoning = 26; sum 639 = total
    const m = normalize.openaiChat(at(fixture("openai-chat.deepseek-cache-hit"), "usage"));
    expect(m).toEqual({
      input_tokens: 175,
      cached_input_tokens: 320,
      output_tokens: 26,
      reasoning_tokens: 118,
    });
    expect(tokenSum(m)).toBe(639);
  });

  it("Groq: the usage Groq puts in x_groq.usage normalizes like OpenAI's", () => {
    const m = normalize.openaiChat(at(fixture("openai-chat.groq-x-groq-usage"), "x_groq", "usage"));
    expect(m).toEqual({ input_tokens: 18, output_tokens: 439 });
  });

  it("Groq: timing fields beside the counts are ignored; reasoning is inside completion_tokens", () => {
    // completion 649 = 570 reasoning + 79 visible
    const m = normalize.openaiChat(at(fixture("openai-chat.groq-reasoning"), "usage"));
    expect(m).toEqual({ input_tokens: 17, output_tokens: 79, reasoning_tokens: 570 });
  });

  it("xAI: reasoning beside completion_tokens, and xAI's own cost agrees", () => {
    // total 241 = 12 prompt + 1 completion + 228 reasoning; prompt 12 = 10 uncached + 2 cached
    const payload = fixture("openai-chat.xai-reasoning");
    const m = normalize.openaiChat(at(payload, "usage"));
    expect(m).toEqual({ input_tokens: 10, cached_input_tokens: 2, output_tokens: 1, reasoning_tokens: 228 });
    expect(tokenSum(m)).toBe(241);
    // grok-3-mini at $0.30 / $0.075 cached / $0.50 per MTok, in xAI ticks (1e-10 USD) per token:
    // 10 × 3000 + 2 × 750 + (1 + 228) × 5000 = 1,176,500 = cost_in_usd_ticks
    const ticks =
      (m.input_tokens ?? 0) * 3000 +
      (m.cached_input_tokens ?? 0) * 750 +
      ((m.output_tokens ?? 0) + (m.reasoning_tokens ?? 0)) * 5000;
    expect(ticks).toBe(at(payload, "usage", "cost_in_usd_ticks"));
  });
});
