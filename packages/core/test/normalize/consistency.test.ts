import { describe, expect, it } from "vitest";
import { normalize } from "../../src/normalize/index.js";
import { validationError } from "./helpers.js";

// Hand-picked inconsistent payloads: each must fail with one issue naming the field in the
// provider's own terms, and a message that carries no received value.

describe("OpenAI chat consistency", () => {
  const base = { prompt_tokens: 2000, completion_tokens: 1000, total_tokens: 3000 };

  it("cached_tokens > prompt_tokens", () => {
    const e = validationError(() =>
      normalize.openaiChat({ ...base, prompt_tokens_details: { cached_tokens: 2001 } }),
    );
    expect(e.subject).toBe("OpenAI chat usage");
    expect(e.issues).toEqual([
      { path: "prompt_tokens_details.cached_tokens", message: "must not exceed prompt_tokens" },
    ]);
    expect(e.message).toBe(
      "Invalid OpenAI chat usage: prompt_tokens_details.cached_tokens: must not exceed prompt_tokens",
    );
  });

  it("cached + audio > prompt (each fits alone)", () => {
    const e = validationError(() =>
      normalize.openaiChat({ ...base, prompt_tokens_details: { cached_tokens: 1500, audio_tokens: 600 } }),
    );
    expect(e.issues).toEqual([
      {
        path: "prompt_tokens_details.audio_tokens",
        message:
          "prompt_tokens_details.cached_tokens + prompt_tokens_details.audio_tokens must not exceed prompt_tokens",
      },
    ]);
  });

  it("reasoning_tokens > completion_tokens", () => {
    const e = validationError(() =>
      normalize.openaiChat({ ...base, completion_tokens_details: { reasoning_tokens: 1001 } }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["completion_tokens_details.reasoning_tokens"]);
  });

  it("reasoning + audio output > completion", () => {
    const e = validationError(() =>
      normalize.openaiChat({
        ...base,
        completion_tokens_details: { reasoning_tokens: 600, audio_tokens: 401 },
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["completion_tokens_details.audio_tokens"]);
  });

  it("rejected_prediction_tokens > completion_tokens", () => {
    const e = validationError(() =>
      normalize.openaiChat({ ...base, completion_tokens_details: { rejected_prediction_tokens: 1001 } }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["completion_tokens_details.rejected_prediction_tokens"]);
  });

  it("total_tokens ≠ prompt_tokens + completion_tokens", () => {
    const e = validationError(() => normalize.openaiChat({ ...base, total_tokens: 2999 }));
    expect(e.issues).toEqual([
      { path: "total_tokens", message: "must equal prompt_tokens + completion_tokens" },
    ]);
    expect(e.message).not.toContain("2999");
  });

  it("works at the 2^53-1 limit and rejects parts that sum past it", () => {
    const big = Number.MAX_SAFE_INTEGER - 1; // 2^53 − 2
    // (2^53 − 2) + 1 = 2^53 − 1 = total: consistent
    expect(normalize.openaiChat({ prompt_tokens: big, completion_tokens: 1, total_tokens: big + 1 })).toEqual(
      {
        input_tokens: big,
        output_tokens: 1,
      },
    );
    // (2^53 − 2) + 2 = 2^53 ≠ 2^53 − 1
    const e = validationError(() =>
      normalize.openaiChat({ prompt_tokens: big, completion_tokens: 2, total_tokens: big + 1 }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["total_tokens"]);
  });

  it("reports several inconsistencies together", () => {
    const e = validationError(() =>
      normalize.openaiChat({
        prompt_tokens: 10,
        completion_tokens: 10,
        total_tokens: 21,
        prompt_tokens_details: { cached_tokens: 11 },
        completion_tokens_details: { reasoning_tokens: 11 },
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual([
      "prompt_tokens_details.cached_tokens",
      "completion_tokens_details.reasoning_tokens",
      "total_tokens",
    ]);
    expect(e.message).toContain("(and 2 more)");
  });
});

describe("OpenAI Responses consistency", () => {
  const base = { input_tokens: 100, output_tokens: 50, total_tokens: 150 };

  it.each([
    [{ input_tokens_details: { cached_tokens: 101 } }, "input_tokens_details.cached_tokens"],
    [{ output_tokens_details: { reasoning_tokens: 51 } }, "output_tokens_details.reasoning_tokens"],
    [{ total_tokens: 151 }, "total_tokens"],
  ])("%j ⇒ %s", (patch, path) => {
    const e = validationError(() => normalize.openaiResponses({ ...base, ...patch }));
    expect(e.subject).toBe("OpenAI Responses usage");
    expect(e.issues.map((i) => i.path)).toEqual([path]);
  });
});

describe("Anthropic consistency", () => {
  it("a TTL breakdown that does not add up to cache_creation_input_tokens", () => {
    const e = validationError(() =>
      normalize.anthropic({
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: 1000,
        cache_creation: { ephemeral_5m_input_tokens: 400, ephemeral_1h_input_tokens: 500 },
      }),
    );
    expect(e.subject).toBe("Anthropic usage");
    expect(e.issues).toEqual([
      {
        path: "cache_creation",
        message:
          "cache_creation.ephemeral_5m_input_tokens + cache_creation.ephemeral_1h_input_tokens must equal cache_creation_input_tokens",
      },
    ]);
    expect(e.message).not.toContain("1000");
  });

  it("a breakdown larger than cache_creation_input_tokens", () => {
    const e = validationError(() =>
      normalize.anthropic({
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: 0,
        cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 1 },
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["cache_creation"]);
  });

  it("null cache fields (as SDKs serialise them) read as zero", () => {
    expect(
      normalize.anthropic({
        input_tokens: 10,
        output_tokens: 5,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: null,
        cache_creation: null,
        server_tool_use: null,
      }),
    ).toEqual({ input_tokens: 10, output_tokens: 5 });
  });
});

describe("Gemini consistency", () => {
  const base = {
    promptTokenCount: 1000,
    candidatesTokenCount: 100,
    thoughtsTokenCount: 50,
    totalTokenCount: 1150,
  };

  it.each([
    [{ cachedContentTokenCount: 1001 }, "cachedContentTokenCount"],
    [{ totalTokenCount: 1100 }, "totalTokenCount"],
    [{ toolUsePromptTokenCount: 10 }, "totalTokenCount"],
    [{ promptTokensDetails: [{ modality: "AUDIO", tokenCount: 1001 }] }, "promptTokensDetails"],
    [{ candidatesTokensDetails: [{ modality: "AUDIO", tokenCount: 101 }] }, "candidatesTokensDetails"],
    [
      {
        candidatesTokensDetails: [
          { modality: "AUDIO", tokenCount: 60 },
          { modality: "AUDIO", tokenCount: 41 },
        ],
      },
      "candidatesTokensDetails",
    ],
    [
      { cachedContentTokenCount: 100, cacheTokensDetails: [{ modality: "AUDIO", tokenCount: 101 }] },
      "cacheTokensDetails",
    ],
    [
      // cached audio larger than the prompt's audio
      {
        cachedContentTokenCount: 100,
        promptTokensDetails: [{ modality: "AUDIO", tokenCount: 10 }],
        cacheTokensDetails: [{ modality: "AUDIO", tokenCount: 20 }],
      },
      "cacheTokensDetails",
    ],
    [
      // 900 cached text + 200 uncached audio do not fit in a 1000-token prompt
      {
        cachedContentTokenCount: 900,
        promptTokensDetails: [{ modality: "AUDIO", tokenCount: 200 }],
      },
      "promptTokensDetails",
    ],
  ])("%j ⇒ %s", (patch, path) => {
    const e = validationError(() => normalize.gemini({ ...base, ...patch }));
    expect(e.subject).toBe("Gemini usage");
    expect(e.issues.map((i) => i.path)).toEqual([path]);
  });

  it("the total message lists the four parts", () => {
    const e = validationError(() => normalize.gemini({ ...base, totalTokenCount: 1 }));
    expect(e.issues[0]!.message).toBe(
      "must equal promptTokenCount + candidatesTokenCount + thoughtsTokenCount + toolUsePromptTokenCount",
    );
  });

  it("without totalTokenCount, input with tool-use past 2^53-1 is rejected", () => {
    const e = validationError(() =>
      normalize.gemini({ promptTokenCount: Number.MAX_SAFE_INTEGER, toolUsePromptTokenCount: 2 }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["toolUsePromptTokenCount"]);
  });
});

describe("OpenRouter consistency", () => {
  const base = { prompt_tokens: 100, completion_tokens: 50, total_tokens: 150, cost: 1 };

  it.each([
    [{ prompt_tokens_details: { cached_tokens: 101 } }, "prompt_tokens_details.cached_tokens"],
    // Cache writes may sit beside prompt_tokens (see the goldens); reads and audio may not.
    [
      { prompt_tokens_details: { cached_tokens: 60, cache_write_tokens: 500, audio_tokens: 41 } },
      "prompt_tokens_details.audio_tokens",
    ],
    [{ completion_tokens_details: { reasoning_tokens: 51 } }, "completion_tokens_details.reasoning_tokens"],
    [
      { completion_tokens_details: { reasoning_tokens: 30, image_tokens: 21 } },
      "completion_tokens_details.image_tokens",
    ],
    [{ total_tokens: 149 }, "total_tokens"],
  ])("%j ⇒ %s", (patch, path) => {
    const e = validationError(() => normalize.openrouter({ ...base, ...patch }));
    expect(e.subject).toBe("OpenRouter usage");
    expect(e.issues.map((i) => i.path)).toEqual([path]);
  });
});

describe("consistency of the 2026-12 fields", () => {
  it("OpenAI chat: cached + cache_write > prompt names cache_write_tokens", () => {
    const e = validationError(() =>
      normalize.openaiChat({
        prompt_tokens: 100,
        completion_tokens: 0,
        total_tokens: 100,
        prompt_tokens_details: { cached_tokens: 60, cache_write_tokens: 41 },
      }),
    );
    expect(e.issues).toEqual([
      {
        path: "prompt_tokens_details.cache_write_tokens",
        message:
          "prompt_tokens_details.cached_tokens + prompt_tokens_details.cache_write_tokens must not exceed prompt_tokens",
      },
    ]);
  });

  it("OpenAI Responses: cached + cache_write > input names cache_write_tokens", () => {
    const e = validationError(() =>
      normalize.openaiResponses({
        input_tokens: 100,
        output_tokens: 0,
        total_tokens: 100,
        input_tokens_details: { cached_tokens: 90, cache_write_tokens: 11 },
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["input_tokens_details.cache_write_tokens"]);
  });

  it("DeepSeek: a cached_tokens that is not the hit count", () => {
    const e = validationError(() =>
      normalize.openaiChat({
        prompt_tokens: 495,
        completion_tokens: 144,
        total_tokens: 639,
        prompt_cache_hit_tokens: 320,
        prompt_cache_miss_tokens: 175,
        prompt_tokens_details: { cached_tokens: 300 },
      }),
    );
    expect(e.issues).toEqual([
      { path: "prompt_tokens_details.cached_tokens", message: "must equal prompt_cache_hit_tokens" },
    ]);
  });

  it("DeepSeek: misses alone larger than the prompt", () => {
    const e = validationError(() =>
      normalize.openaiChat({
        prompt_tokens: 10,
        completion_tokens: 0,
        total_tokens: 10,
        prompt_cache_miss_tokens: 11,
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["prompt_cache_miss_tokens"]);
  });

  it("Gemini: IMAGE output larger than candidatesTokenCount", () => {
    const e = validationError(() =>
      normalize.gemini({
        promptTokenCount: 10,
        candidatesTokenCount: 100,
        candidatesTokensDetails: [{ modality: "IMAGE", tokenCount: 101 }],
      }),
    );
    expect(e.issues).toEqual([
      { path: "candidatesTokensDetails", message: "must not exceed candidatesTokenCount" },
    ]);
  });

  it("OpenAI Images: output details that disagree with output_tokens", () => {
    const e = validationError(() =>
      normalize.openaiImages({
        input_tokens: 10,
        input_tokens_details: { text_tokens: 10, image_tokens: 0 },
        output_tokens: 100,
        output_tokens_details: { text_tokens: 10, image_tokens: 80 },
        total_tokens: 110,
      }),
    );
    expect(e.subject).toBe("OpenAI images usage");
    expect(e.issues).toEqual([
      {
        path: "output_tokens",
        message: "must equal output_tokens_details.text_tokens + output_tokens_details.image_tokens",
      },
    ]);
  });

  it("Anthropic: a declined attempt with output but no model, beside a fallback_message", () => {
    const e = validationError(() =>
      normalize.anthropic({
        input_tokens: 10,
        output_tokens: 5,
        iterations: [
          { type: "message", input_tokens: 8, output_tokens: 3 },
          { type: "fallback_message", model: "claude-opus-4-8", input_tokens: 10, output_tokens: 5 },
        ],
      }),
    );
    expect(e.issues).toEqual([
      {
        path: "iterations.0.model",
        message: "a message iteration beside a fallback_message must name its model",
      },
    ]);
  });

  it("Anthropic: a compaction turn whose TTL breakdown disagrees is named under its iteration", () => {
    const e = validationError(() =>
      normalize.anthropic({
        input_tokens: 1,
        output_tokens: 1,
        iterations: [
          {
            type: "compaction",
            input_tokens: 5,
            output_tokens: 1,
            cache_creation_input_tokens: 10,
            cache_creation: { ephemeral_5m_input_tokens: 3, ephemeral_1h_input_tokens: 3 },
          },
        ],
      }),
    );
    expect(e.issues.map((i) => i.path)).toEqual(["iterations.0.cache_creation"]);
  });
});
