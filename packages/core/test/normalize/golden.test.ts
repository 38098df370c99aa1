import { describe, expect, it } from "vitest";
import type { MeterSet } from "../../src/index.js";
import {
  normalize,
  normalizeAnthropic,
  normalizeGemini,
  normalizeOpenAIChat,
  normalizeOpenAIImages,
  normalizeOpenAIResponses,
  normalizeOpenRouter,
} from "../../src/normalize/index.js";
import { TOKEN_METERS } from "../../src/schemas/meters.js";
import { at, fixture, record } from "./helpers.js";

const tokenSum = (m: MeterSet) => TOKEN_METERS.reduce((acc, k) => acc + (m[k] ?? 0), 0);

describe("normalize object", () => {
  it("maps each provider to its named normalizer and is frozen", () => {
    expect(normalize.openaiChat).toBe(normalizeOpenAIChat);
    expect(normalize.openaiResponses).toBe(normalizeOpenAIResponses);
    expect(normalize.anthropic).toBe(normalizeAnthropic);
    expect(normalize.gemini).toBe(normalizeGemini);
    expect(normalize.openrouter).toBe(normalizeOpenRouter);
    expect(normalize.openaiImages).toBe(normalizeOpenAIImages);
    expect(Object.isFrozen(normalize)).toBe(true);
    expect(Object.keys(normalize)).toEqual([
      "openaiChat",
      "openaiResponses",
      "anthropic",
      "gemini",
      "openrouter",
      "openaiImages",
    ]);
  });
});

describe("no double count (explicit goldens)", () => {
  it("OpenAI prompt 2,000 with 1,500 cached ⇒ input 500 + cached 1,500", () => {
    // 2000 − 1500 = 500 uncached; completion 300 has no reasoning ⇒ output 300
    const m = normalize.openaiChat(at(fixture("openai-chat.cached"), "usage"));
    expect(m).toEqual({ input_tokens: 500, cached_input_tokens: 1500, output_tokens: 300 });
    expect(tokenSum(m)).toBe(2300);
  });

  it("Anthropic input 500 + cache_read 1,500 ⇒ the same meters (input_tokens excludes cache reads)", () => {
    // input_tokens 500 is already uncached; cache_read_input_tokens 1500 sits beside it
    const m = normalize.anthropic(at(fixture("anthropic.message"), "usage"));
    expect(m).toEqual({ input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400 });
  });

  it("OpenAI and Anthropic describing the same request produce identical input meters", () => {
    const openai = normalize.openaiChat({
      prompt_tokens: 2000,
      completion_tokens: 400,
      total_tokens: 2400,
      prompt_tokens_details: { cached_tokens: 1500 },
    });
    const anthropic = normalize.anthropic({
      input_tokens: 500,
      cache_read_input_tokens: 1500,
      output_tokens: 400,
    });
    expect(openai).toEqual(anthropic);
    expect(openai).toEqual({ input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400 });
  });

  it("reasoning: completion 1,000 with 600 reasoning ⇒ output 400 + reasoning 600", () => {
    // OpenAI chat: 1000 − 600 = 400 visible output
    const m = normalize.openaiChat(at(fixture("openai-chat.reasoning"), "usage"));
    expect(m).toEqual({ input_tokens: 850, output_tokens: 400, reasoning_tokens: 600 });
    expect(tokenSum(m)).toBe(1850);
  });

  it("reasoning on the Responses API and OpenRouter splits the same way", () => {
    // Responses: input 2000 − 1500 cached = 500; output 1000 − 600 reasoning = 400
    const r = normalize.openaiResponses(at(fixture("openai-responses.response"), "usage"));
    expect(r).toEqual({
      input_tokens: 500,
      cached_input_tokens: 1500,
      output_tokens: 400,
      reasoning_tokens: 600,
    });
    // OpenRouter: same arithmetic; cost is ignored
    const o = normalize.openrouter(at(fixture("openrouter.cached-reasoning"), "usage"));
    expect(o).toEqual(r);
  });

  it("Gemini: candidates exclude thoughts, prompt includes cache ⇒ same four meters", () => {
    // input 2000 − 1500 = 500; cached 1500; output = candidates 400; reasoning = thoughts 600; 500+1500+400+600 = 3000 total
    const m = normalize.gemini(at(fixture("gemini.thinking-cached"), "usageMetadata"));
    expect(m).toEqual({
      input_tokens: 500,
      cached_input_tokens: 1500,
      output_tokens: 400,
      reasoning_tokens: 600,
    });
    expect(tokenSum(m)).toBe(3000);
  });
});

describe("OpenAI chat fixtures", () => {
  it("plain completion: zero details are omitted", () => {
    // 1117 prompt, nothing cached ⇒ input 1117; 46 completion, no reasoning ⇒ output 46
    const m = normalizeOpenAIChat(at(fixture("openai-chat.completion"), "usage"));
    expect(m).toEqual({ input_tokens: 1117, output_tokens: 46 });
    expect(Object.keys(m)).toEqual(["input_tokens", "output_tokens"]);
    expect(Object.isFrozen(m)).toBe(true);
  });

  it("final stream chunk (choices: [], usage) with a cache hit", () => {
    const chunk = fixture("openai-chat.stream-final-chunk");
    expect(at(chunk, "choices")).toEqual([]);
    // input 1423 − 1280 = 143; cached 1280; output 312; sum 1735 = total_tokens
    const m = normalizeOpenAIChat(at(chunk, "usage"));
    expect(m).toEqual({ input_tokens: 143, cached_input_tokens: 1280, output_tokens: 312 });
    expect(tokenSum(m)).toBe(1735);
  });

  it("audio in and out are taken out of the text meters", () => {
    // input 120 − 90 audio = 30; audio_input 90; output 250 − 200 audio = 50; audio_output 200; sum 370
    const m = normalizeOpenAIChat(at(fixture("openai-chat.audio"), "usage"));
    expect(m).toEqual({
      input_tokens: 30,
      output_tokens: 50,
      audio_input_tokens: 90,
      audio_output_tokens: 200,
    });
    expect(Object.keys(m)).toEqual([
      "input_tokens",
      "output_tokens",
      "audio_input_tokens",
      "audio_output_tokens",
    ]);
    expect(tokenSum(m)).toBe(370);
  });

  it("predicted-output tokens stay in output_tokens (already inside completion_tokens)", () => {
    // 39 completion (18 accepted + 10 rejected are part of it) ⇒ output 39; input 81
    const m = normalizeOpenAIChat(at(fixture("openai-chat.predicted-outputs"), "usage"));
    expect(m).toEqual({ input_tokens: 81, output_tokens: 39 });
  });

  it("cached audio counts as cached input; uncached audio as audio input", () => {
    // prompt 1000 = 600 uncached text + 300 cached + 100 audio ⇒ input 600, cached 300, audio 100
    const m = normalizeOpenAIChat({
      prompt_tokens: 1000,
      completion_tokens: 0,
      total_tokens: 1000,
      prompt_tokens_details: { cached_tokens: 300, audio_tokens: 100 },
    });
    expect(m).toEqual({ input_tokens: 600, cached_input_tokens: 300, audio_input_tokens: 100 });
  });

  it("null details (OpenAI-compatible servers) read as zero", () => {
    const m = normalizeOpenAIChat({
      prompt_tokens: 10,
      completion_tokens: 5,
      total_tokens: 15,
      prompt_tokens_details: null,
      completion_tokens_details: { reasoning_tokens: null },
    });
    expect(m).toEqual({ input_tokens: 10, output_tokens: 5 });
  });

  it("an all-zero usage gives an empty MeterSet", () => {
    const m = normalizeOpenAIChat({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(m).toEqual({});
    expect(Object.keys(m)).toHaveLength(0);
  });

  it("tolerates unknown extra fields", () => {
    const m = normalizeOpenAIChat({
      prompt_tokens: 20,
      completion_tokens: 10,
      total_tokens: 30,
      prompt_tokens_details: { cached_tokens: 0, image_tokens: 7, future_thing: "x" },
      completion_tokens_details: { reasoning_tokens: 4, brand_new: { a: 1 } },
      service_tier: "flex",
    });
    // input 20; output 10 − 4 = 6; reasoning 4
    expect(m).toEqual({ input_tokens: 20, output_tokens: 6, reasoning_tokens: 4 });
  });
});

describe("OpenAI Responses fixtures", () => {
  it("response.completed stream event: usage lives at response.usage", () => {
    const event = fixture("openai-responses.stream-completed");
    expect(at(event, "type")).toBe("response.completed");
    // input 12033 − 11904 cached = 129; cached 11904; output 44; sum 12077 = total_tokens
    const m = normalizeOpenAIResponses(at(event, "response", "usage"));
    expect(m).toEqual({ input_tokens: 129, cached_input_tokens: 11904, output_tokens: 44 });
    expect(tokenSum(m)).toBe(12077);
  });
});

describe("Anthropic fixtures", () => {
  it("5-minute and 1-hour cache writes go to their own meters", () => {
    // input 50; cache read 1800; writes 456 (5m) + 1592 (1h) = 2048 = cache_creation_input_tokens; output 503
    const m = normalizeAnthropic(at(fixture("anthropic.cache-ttl-breakdown"), "usage"));
    expect(m).toEqual({
      input_tokens: 50,
      cached_input_tokens: 1800,
      cache_write_tokens: 456,
      cache_write_1h_tokens: 1592,
      output_tokens: 503,
    });
    expect(Object.keys(m)).toEqual([
      "input_tokens",
      "cached_input_tokens",
      "cache_write_tokens",
      "cache_write_1h_tokens",
      "output_tokens",
    ]);
  });

  it("a cache write without the TTL breakdown counts as 5-minute", () => {
    // input 21; cache_creation_input_tokens 188086 ⇒ cache_write_tokens; read 0 omitted; output 393
    const m = normalizeAnthropic(at(fixture("anthropic.cache-no-breakdown"), "usage"));
    expect(m).toEqual({ input_tokens: 21, cache_write_tokens: 188086, output_tokens: 393 });
  });

  it("breakdown without cache_creation_input_tokens is used as is", () => {
    const m = normalizeAnthropic({
      input_tokens: 10,
      output_tokens: 2,
      cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 700 },
    });
    expect(m).toEqual({ input_tokens: 10, cache_write_1h_tokens: 700, output_tokens: 2 });
  });

  it("stream: message_start usage overlaid with the last (cumulative) message_delta usage", () => {
    const events = at(fixture("anthropic.stream"), "events") as unknown[];
    const start = events.find((e) => at(e, "type") === "message_start");
    const deltas = events.filter((e) => at(e, "type") === "message_delta");
    const last = deltas[deltas.length - 1];
    const merged: Record<string, unknown> = { ...record(at(start, "message", "usage")) };
    for (const [k, v] of Object.entries(record(at(last, "usage"))))
      if (v !== null && v !== undefined) merged[k] = v;
    // input 25; read 3000; write 1200 (5m per breakdown, = cache_creation_input_tokens); output 15 (delta, not 1 + 15)
    expect(normalizeAnthropic(merged)).toEqual({
      input_tokens: 25,
      cached_input_tokens: 3000,
      cache_write_tokens: 1200,
      output_tokens: 15,
    });
    // message_start alone has only the provisional output count
    expect(normalizeAnthropic(at(start, "message", "usage"))).toMatchObject({ output_tokens: 1 });
  });
});

describe("Gemini fixtures", () => {
  it("stream: the last chunk's usageMetadata holds the totals", () => {
    const chunks = at(fixture("gemini.stream"), "chunks") as unknown[];
    const last = chunks[chunks.length - 1];
    // input 812; output 36; reasoning 244; 812 + 36 + 244 = 1092 = totalTokenCount
    const m = normalizeGemini(at(last, "usageMetadata"));
    expect(m).toEqual({ input_tokens: 812, output_tokens: 36, reasoning_tokens: 244 });
    expect(tokenSum(m)).toBe(1092);
  });

  it("audio modality is taken out of the text meters on both sides", () => {
    // prompt 1069 = 69 TEXT + 1000 AUDIO ⇒ input 69, audio_input 1000
    // candidates 512 = 32 TEXT + 480 AUDIO ⇒ output 32, audio_output 480; sum 1581 = total
    const m = normalizeGemini(at(fixture("gemini.audio"), "usageMetadata"));
    expect(m).toEqual({
      input_tokens: 69,
      output_tokens: 32,
      audio_input_tokens: 1000,
      audio_output_tokens: 480,
    });
    expect(tokenSum(m)).toBe(1581);
  });

  it("toolUsePromptTokenCount is added to input_tokens", () => {
    // input 12 + 580 tool-use = 592; output 24; reasoning 42; 592 + 24 + 42 = 658 = total
    const m = normalizeGemini(at(fixture("gemini.tool-use"), "usageMetadata"));
    expect(m).toEqual({ input_tokens: 592, output_tokens: 24, reasoning_tokens: 42 });
    expect(tokenSum(m)).toBe(658);
  });

  it("cached audio is cached_audio_input_tokens, the rest of the cache cached_input_tokens", () => {
    // prompt 33000 = 1000 TEXT + 32000 AUDIO; cached 32020 = 20 TEXT + 32000 AUDIO
    // uncached audio 32000 − 32000 = 0; input 33000 − 32020 − 0 = 980; output 9
    // cached 32020 − 32000 cached audio = 20 cached_input_tokens
    const m = normalizeGemini(at(fixture("gemini.cached-audio"), "usageMetadata"));
    expect(m).toEqual({
      input_tokens: 980,
      cached_input_tokens: 20,
      cached_audio_input_tokens: 32000,
      output_tokens: 9,
    });
    expect(tokenSum(m)).toBe(33009);
  });

  it("partly cached audio splits between cached and audio input", () => {
    // prompt 5000 = 1000 TEXT + 4000 AUDIO; cached 1500 = 500 TEXT + 1000 AUDIO
    // audio_input 4000 − 1000 = 3000; input 5000 − 1500 − 3000 = 500; cached 1500 − 1000 = 500,
    // cached audio 1000; 500 + 500 + 1000 + 3000 = 5000
    const m = normalizeGemini({
      promptTokenCount: 5000,
      cachedContentTokenCount: 1500,
      totalTokenCount: 5000,
      promptTokensDetails: [
        { modality: "TEXT", tokenCount: 1000 },
        { modality: "AUDIO", tokenCount: 4000 },
      ],
      cacheTokensDetails: [
        { modality: "TEXT", tokenCount: 500 },
        { modality: "AUDIO", tokenCount: 1000 },
      ],
    });
    expect(m).toEqual({
      input_tokens: 500,
      cached_input_tokens: 500,
      cached_audio_input_tokens: 1000,
      audio_input_tokens: 3000,
    });
    expect(tokenSum(m)).toBe(5000);
  });

  it("a blocked prompt (no candidatesTokenCount) meters only the input", () => {
    const m = normalizeGemini({ promptTokenCount: 17, totalTokenCount: 17 });
    expect(m).toEqual({ input_tokens: 17 });
  });

  it("modality entries without tokenCount (proto3 zero) count as 0", () => {
    const m = normalizeGemini({
      promptTokenCount: 8,
      candidatesTokenCount: 3,
      totalTokenCount: 11,
      promptTokensDetails: [{ modality: "TEXT", tokenCount: 8 }, { modality: "AUDIO" }],
      candidatesTokensDetails: [{ modality: "IMAGE", tokenCount: 3 }],
    });
    // IMAGE output tokens are image_output_tokens (priced apart); no audio, no text left
    expect(m).toEqual({ input_tokens: 8, image_output_tokens: 3 });
  });
});

describe("OpenRouter fixtures", () => {
  it("final stream chunk with cache writes (5-minute) inside prompt_tokens", () => {
    const chunk = fixture("openrouter.stream-final-chunk");
    expect(at(chunk, "choices")).toEqual([]);
    // input 3214 − 0 read − 3100 write = 114; cache_write 3100; output 187; sum 3401 = total_tokens
    const m = normalizeOpenRouter(at(chunk, "usage"));
    expect(m).toEqual({ input_tokens: 114, cache_write_tokens: 3100, output_tokens: 187 });
    expect(tokenSum(m)).toBe(3401);
  });

  it("cost is ignored: two usages differing only in cost meter the same", () => {
    const base = { prompt_tokens: 100, completion_tokens: 50, total_tokens: 150 };
    expect(normalizeOpenRouter({ ...base, cost: 0.95 })).toEqual(normalizeOpenRouter({ ...base, cost: 197 }));
    expect(normalizeOpenRouter({ ...base, cost: 0.95 })).toEqual({ input_tokens: 100, output_tokens: 50 });
  });
});
