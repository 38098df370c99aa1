import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MeterSet } from "../../src/index.js";
import { normalize, normalizeResponse } from "../../src/normalize/index.js";
import { BUILTIN_METERS, type BuiltinMeter, PROMPT_METERS, TOKEN_METERS } from "../../src/schemas/meters.js";
import { validationPaths } from "./helpers.js";

// Parts are drawn so that any sum of up to 8 of them stays a safe integer (8 × 2^49 = 2^52).
const part = fc.oneof(fc.constant(0), fc.nat(5_000), fc.nat({ max: 2 ** 49 }));
const positive = fc.oneof(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 1, max: 2 ** 49 }));

/** How optional detail fields are sent: all present, zeros omitted, or zeros as null. */
type Style = "full" | "omitZeros" | "nullZeros";
const style = fc.constantFrom<Style>("full", "omitZeros", "nullZeros");

/** A details object in the given style; `undefined` when every field was omitted. */
function detailsIn(s: Style, fields: Record<string, number>): Record<string, number | null> | undefined {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v !== 0 || s === "full") out[k] = v;
    else if (s === "nullZeros") out[k] = null;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

const sum = (m: MeterSet, meters: readonly string[]) =>
  meters.reduce((acc, k) => acc + ((m as Record<string, number | undefined>)[k] ?? 0), 0);
const OUTPUT_METERS = ["output_tokens", "reasoning_tokens", "audio_output_tokens", "image_output_tokens"];

/** Every meter a normalizer returns is a known, non-zero, safe, non-negative integer; the set is frozen and ordered. */
function expectWellFormed(m: MeterSet): void {
  expect(Object.isFrozen(m)).toBe(true);
  const keys = Object.keys(m);
  const order = keys.map((k) => BUILTIN_METERS.indexOf(k as BuiltinMeter));
  expect(order.every((i) => i >= 0)).toBe(true);
  expect(order).toEqual([...order].sort((a, b) => a - b));
  for (const v of Object.values(m)) {
    expect(Number.isSafeInteger(v)).toBe(true);
    expect(v).toBeGreaterThan(0);
  }
}

/** The expected MeterSet: the non-zero entries of `values`. */
function nonZero(values: Partial<Record<BuiltinMeter, number>>): MeterSet {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== 0));
}

describe("OpenAI chat properties", () => {
  it("consistent payloads: meters are the disjoint parts and sum to the reported totals", () => {
    fc.assert(
      fc.property(
        fc.record({
          text: part,
          cached: part,
          write: part,
          audioIn: part,
          visible: part,
          reasoning: part,
          audioOut: part,
        }),
        style,
        (p, s) => {
          const prompt = p.text + p.cached + p.write + p.audioIn;
          const completion = p.visible + p.reasoning + p.audioOut;
          const usage = {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: detailsIn(s, {
              cached_tokens: p.cached,
              cache_write_tokens: p.write,
              audio_tokens: p.audioIn,
            }),
            completion_tokens_details: detailsIn(s, {
              reasoning_tokens: p.reasoning,
              audio_tokens: p.audioOut,
              accepted_prediction_tokens: Math.min(p.visible, 3),
              rejected_prediction_tokens: 0,
            }),
          };
          const m = normalize.openaiChat(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.text,
              cached_input_tokens: p.cached,
              cache_write_tokens: p.write,
              audio_input_tokens: p.audioIn,
              output_tokens: p.visible,
              reasoning_tokens: p.reasoning,
              audio_output_tokens: p.audioOut,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(prompt);
          expect(sum(m, OUTPUT_METERS)).toBe(completion);
          expect(sum(m, TOKEN_METERS)).toBe(prompt + completion);
        },
      ),
    );
  });

  it("cached_tokens > prompt_tokens is rejected at prompt_tokens_details.cached_tokens", () => {
    fc.assert(
      fc.property(part, positive, part, (prompt, excess, completion) => {
        const usage = {
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion,
          prompt_tokens_details: { cached_tokens: prompt + excess },
        };
        expect(validationPaths(() => normalize.openaiChat(usage), "OpenAI chat usage")).toEqual([
          "prompt_tokens_details.cached_tokens",
        ]);
      }),
    );
  });

  it("cached + audio > prompt_tokens (each fitting alone) is rejected at prompt_tokens_details.audio_tokens", () => {
    fc.assert(
      fc.property(positive, fc.double({ min: 0, max: 1, noNaN: true }), positive, (prompt, f, extra) => {
        const cached = Math.max(1, Math.floor(prompt * f));
        const audio = Math.min(prompt, prompt - cached + extra); // > prompt − cached, ≤ prompt
        fc.pre(audio + cached > prompt && cached <= prompt);
        const usage = {
          prompt_tokens: prompt,
          completion_tokens: 0,
          total_tokens: prompt,
          prompt_tokens_details: { cached_tokens: cached, audio_tokens: audio },
        };
        expect(validationPaths(() => normalize.openaiChat(usage), "OpenAI chat usage")).toEqual([
          "prompt_tokens_details.audio_tokens",
        ]);
      }),
    );
  });

  it("reasoning_tokens > completion_tokens is rejected at completion_tokens_details.reasoning_tokens", () => {
    fc.assert(
      fc.property(part, part, positive, (prompt, completion, excess) => {
        const usage = {
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion,
          completion_tokens_details: { reasoning_tokens: completion + excess },
        };
        expect(validationPaths(() => normalize.openaiChat(usage), "OpenAI chat usage")).toEqual([
          "completion_tokens_details.reasoning_tokens",
        ]);
      }),
    );
  });

  it("a total_tokens that disagrees with prompt + completion is rejected at total_tokens", () => {
    fc.assert(
      fc.property(part, part, fc.integer({ min: -1000, max: 1000 }), (prompt, completion, delta) => {
        fc.pre(delta !== 0 && prompt + completion + delta >= 0);
        const usage = {
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion + delta,
        };
        expect(validationPaths(() => normalize.openaiChat(usage), "OpenAI chat usage")).toEqual([
          "total_tokens",
        ]);
      }),
    );
  });
});

describe("OpenAI Responses properties", () => {
  it("consistent payloads sum to input_tokens / output_tokens / total_tokens", () => {
    fc.assert(
      fc.property(
        fc.record({ text: part, cached: part, write: part, visible: part, reasoning: part }),
        style,
        (p, s) => {
          const input = p.text + p.cached + p.write;
          const output = p.visible + p.reasoning;
          const usage = {
            input_tokens: input,
            input_tokens_details: detailsIn(s, { cached_tokens: p.cached, cache_write_tokens: p.write }),
            output_tokens: output,
            output_tokens_details: detailsIn(s, { reasoning_tokens: p.reasoning }),
            total_tokens: input + output,
          };
          const m = normalize.openaiResponses(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.text,
              cached_input_tokens: p.cached,
              cache_write_tokens: p.write,
              output_tokens: p.visible,
              reasoning_tokens: p.reasoning,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(input);
          expect(sum(m, OUTPUT_METERS)).toBe(output);
          expect(sum(m, TOKEN_METERS)).toBe(input + output);
        },
      ),
    );
  });

  it("inconsistent payloads name the field", () => {
    const kind = fc.constantFrom("cached", "reasoning", "total");
    fc.assert(
      fc.property(kind, part, part, positive, (k, input, output, excess) => {
        const usage: Record<string, unknown> = {
          input_tokens: input,
          output_tokens: output,
          total_tokens: input + output,
        };
        if (k === "cached") usage.input_tokens_details = { cached_tokens: input + excess };
        if (k === "reasoning") usage.output_tokens_details = { reasoning_tokens: output + excess };
        if (k === "total") usage.total_tokens = input + output + excess;
        const expected = {
          cached: "input_tokens_details.cached_tokens",
          reasoning: "output_tokens_details.reasoning_tokens",
          total: "total_tokens",
        }[k];
        expect(validationPaths(() => normalize.openaiResponses(usage), "OpenAI Responses usage")).toEqual([
          expected,
        ]);
      }),
    );
  });
});

describe("Anthropic properties", () => {
  const shape = fc.constantFrom("breakdown+total", "breakdown-only", "total-only");

  it("consistent payloads: the input groups map one to one and sum to the prompt", () => {
    fc.assert(
      fc.property(
        fc.record({ input: part, read: part, w5: part, w1h: part, output: part }),
        shape,
        style,
        (p, sh, s) => {
          const w1h = sh === "total-only" ? 0 : p.w1h; // without a breakdown every write is 5-minute
          const usage: Record<string, unknown> = {
            input_tokens: p.input,
            output_tokens: p.output,
            ...detailsIn(s, { cache_read_input_tokens: p.read }),
          };
          if (sh !== "breakdown-only") usage.cache_creation_input_tokens = p.w5 + w1h;
          if (sh !== "total-only") {
            usage.cache_creation = { ephemeral_5m_input_tokens: p.w5, ephemeral_1h_input_tokens: w1h };
          }
          const m = normalize.anthropic(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.input,
              cached_input_tokens: p.read,
              cache_write_tokens: p.w5,
              cache_write_1h_tokens: w1h,
              output_tokens: p.output,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(p.input + p.read + p.w5 + w1h);
          expect(sum(m, OUTPUT_METERS)).toBe(p.output);
        },
      ),
    );
  });

  it("a breakdown that disagrees with cache_creation_input_tokens is rejected at cache_creation", () => {
    fc.assert(
      fc.property(part, part, fc.integer({ min: -1000, max: 1000 }), (w5, w1h, delta) => {
        fc.pre(delta !== 0 && w5 + w1h + delta >= 0);
        const usage = {
          input_tokens: 1,
          output_tokens: 1,
          cache_creation_input_tokens: w5 + w1h + delta,
          cache_creation: { ephemeral_5m_input_tokens: w5, ephemeral_1h_input_tokens: w1h },
        };
        expect(validationPaths(() => normalize.anthropic(usage), "Anthropic usage")).toEqual([
          "cache_creation",
        ]);
      }),
    );
  });
});

describe("Gemini properties", () => {
  it("consistent payloads: meters are disjoint and sum to totalTokenCount", () => {
    fc.assert(
      fc.property(
        fc.record({
          text: part,
          cachedText: part,
          cachedAudio: part,
          audio: part,
          toolUse: part,
          visible: part,
          audioOut: part,
          imageOut: part,
          thoughts: part,
        }),
        fc.boolean(),
        (p, withTotal) => {
          const prompt = p.text + p.cachedText + p.cachedAudio + p.audio;
          const cached = p.cachedText + p.cachedAudio;
          const candidates = p.visible + p.audioOut + p.imageOut;
          const total = prompt + candidates + p.thoughts + p.toolUse;
          const usage = {
            promptTokenCount: prompt,
            cachedContentTokenCount: cached,
            candidatesTokenCount: candidates,
            thoughtsTokenCount: p.thoughts,
            toolUsePromptTokenCount: p.toolUse,
            ...(withTotal ? { totalTokenCount: total } : {}),
            promptTokensDetails: [
              { modality: "TEXT", tokenCount: p.text + p.cachedText },
              { modality: "AUDIO", tokenCount: p.cachedAudio + p.audio },
            ],
            cacheTokensDetails: [
              { modality: "TEXT", tokenCount: p.cachedText },
              { modality: "AUDIO", tokenCount: p.cachedAudio },
            ],
            candidatesTokensDetails: [
              { modality: "TEXT", tokenCount: p.visible },
              { modality: "AUDIO", tokenCount: p.audioOut },
              { modality: "IMAGE", tokenCount: p.imageOut },
            ],
          };
          const m = normalize.gemini(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.text + p.toolUse,
              cached_input_tokens: p.cachedText,
              cached_audio_input_tokens: p.cachedAudio,
              audio_input_tokens: p.audio,
              output_tokens: p.visible,
              reasoning_tokens: p.thoughts,
              audio_output_tokens: p.audioOut,
              image_output_tokens: p.imageOut,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(prompt + p.toolUse);
          expect(sum(m, OUTPUT_METERS)).toBe(candidates + p.thoughts);
          expect(sum(m, TOKEN_METERS)).toBe(total);
        },
      ),
    );
  });

  it("inconsistent payloads name the field", () => {
    const kind = fc.constantFrom("cached", "total", "audioOut", "imageOut", "audioIn");
    fc.assert(
      fc.property(kind, part, part, positive, (k, prompt, candidates, excess) => {
        const usage: Record<string, unknown> = {
          promptTokenCount: prompt,
          candidatesTokenCount: candidates,
          totalTokenCount: prompt + candidates,
        };
        if (k === "cached") usage.cachedContentTokenCount = prompt + excess;
        if (k === "total") usage.totalTokenCount = prompt + candidates + excess;
        if (k === "audioOut")
          usage.candidatesTokensDetails = [{ modality: "AUDIO", tokenCount: candidates + excess }];
        if (k === "imageOut")
          usage.candidatesTokensDetails = [{ modality: "IMAGE", tokenCount: candidates + excess }];
        if (k === "audioIn") usage.promptTokensDetails = [{ modality: "AUDIO", tokenCount: prompt + excess }];
        const expected = {
          cached: "cachedContentTokenCount",
          total: "totalTokenCount",
          audioOut: "candidatesTokensDetails",
          imageOut: "candidatesTokensDetails",
          audioIn: "promptTokensDetails",
        }[k];
        expect(validationPaths(() => normalize.gemini(usage), "Gemini usage")).toEqual([expected]);
      }),
    );
  });
});

describe("OpenRouter properties", () => {
  it("consistent payloads sum to prompt_tokens / completion_tokens / total_tokens; cost is ignored", () => {
    fc.assert(
      fc.property(
        fc.record({
          text: part,
          cached: part,
          write: part,
          audioIn: part,
          visible: part,
          reasoning: part,
          imageOut: part,
        }),
        style,
        fc.double({ min: 0, max: 100, noNaN: true }),
        (p, s, cost) => {
          const prompt = p.text + p.cached + p.write + p.audioIn;
          const completion = p.visible + p.reasoning + p.imageOut;
          const usage = {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            cost,
            prompt_tokens_details: detailsIn(s, {
              cached_tokens: p.cached,
              cache_write_tokens: p.write,
              audio_tokens: p.audioIn,
            }),
            completion_tokens_details: detailsIn(s, {
              reasoning_tokens: p.reasoning,
              image_tokens: p.imageOut,
            }),
          };
          const m = normalize.openrouter(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.text,
              cached_input_tokens: p.cached,
              cache_write_tokens: p.write,
              audio_input_tokens: p.audioIn,
              output_tokens: p.visible,
              reasoning_tokens: p.reasoning,
              image_output_tokens: p.imageOut,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(prompt);
          expect(sum(m, OUTPUT_METERS)).toBe(completion);
          expect(sum(m, TOKEN_METERS)).toBe(prompt + completion);
        },
      ),
    );
  });

  it("inconsistent payloads name the field", () => {
    const kind = fc.constantFrom("cached", "audio", "reasoning", "image", "total");
    fc.assert(
      fc.property(kind, part, part, positive, (k, prompt, completion, excess) => {
        const usage: Record<string, unknown> = {
          prompt_tokens: prompt,
          completion_tokens: completion,
          total_tokens: prompt + completion,
        };
        if (k === "cached") usage.prompt_tokens_details = { cached_tokens: prompt + excess };
        // reads fill the prompt; audio then overflows it (writes may sit beside the prompt: not an error)
        if (k === "audio")
          usage.prompt_tokens_details = {
            cached_tokens: prompt,
            cache_write_tokens: excess,
            audio_tokens: excess,
          };
        if (k === "reasoning") usage.completion_tokens_details = { reasoning_tokens: completion + excess };
        if (k === "image")
          usage.completion_tokens_details = { reasoning_tokens: completion, image_tokens: excess };
        if (k === "total") usage.total_tokens = prompt + completion + excess;
        const expected = {
          cached: "prompt_tokens_details.cached_tokens",
          audio: "prompt_tokens_details.audio_tokens",
          reasoning: "completion_tokens_details.reasoning_tokens",
          image: "completion_tokens_details.image_tokens",
          total: "total_tokens",
        }[k];
        expect(validationPaths(() => normalize.openrouter(usage), "OpenRouter usage")).toEqual([expected]);
      }),
    );
  });
});

describe("OpenRouter cache writes beside prompt_tokens", () => {
  it("reads + writes past prompt_tokens: writes billed on top, reads and the rest stay disjoint", () => {
    fc.assert(
      fc.property(
        fc.record({ text: part, cached: part, audioIn: part, visible: part }),
        positive,
        (p, extra) => {
          const prompt = p.text + p.cached + p.audioIn;
          // any write larger than what is left of the prompt after reads and audio overflows it
          const write = p.text + extra;
          const usage = {
            prompt_tokens: prompt,
            completion_tokens: p.visible,
            total_tokens: prompt + p.visible,
            prompt_tokens_details: {
              cached_tokens: p.cached,
              cache_write_tokens: write,
              audio_tokens: p.audioIn,
            },
          };
          const m = normalize.openrouter(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.text,
              cached_input_tokens: p.cached,
              cache_write_tokens: write,
              audio_input_tokens: p.audioIn,
              output_tokens: p.visible,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(prompt + write);
          expect(sum(m, TOKEN_METERS)).toBe(prompt + p.visible + write);
        },
      ),
    );
  });
});

describe("OpenAI Images properties", () => {
  it("text and image input, text and image output: disjoint, summing to total_tokens", () => {
    fc.assert(
      fc.property(
        fc.record({ textIn: part, imageIn: part, textOut: part, imageOut: part }),
        fc.boolean(),
        (p, withOutputDetails) => {
          const input = p.textIn + p.imageIn;
          const output = withOutputDetails ? p.textOut + p.imageOut : p.imageOut;
          const usage = {
            input_tokens: input,
            input_tokens_details: { text_tokens: p.textIn, image_tokens: p.imageIn },
            output_tokens: output,
            ...(withOutputDetails
              ? { output_tokens_details: { text_tokens: p.textOut, image_tokens: p.imageOut } }
              : {}),
            total_tokens: input + output,
          };
          const m = normalize.openaiImages(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.textIn,
              image_input_tokens: p.imageIn,
              output_tokens: withOutputDetails ? p.textOut : 0,
              image_output_tokens: p.imageOut,
            }),
          );
          expect(sum(m, PROMPT_METERS)).toBe(input);
          expect(sum(m, OUTPUT_METERS)).toBe(output);
          expect(sum(m, TOKEN_METERS)).toBe(input + output);
        },
      ),
    );
  });

  it("details that disagree with input_tokens are rejected at input_tokens", () => {
    fc.assert(
      fc.property(part, part, fc.integer({ min: -1000, max: 1000 }), (text, image, delta) => {
        fc.pre(delta !== 0 && text + image + delta >= 0);
        const usage = {
          input_tokens: text + image + delta,
          input_tokens_details: { text_tokens: text, image_tokens: image },
          output_tokens: 0,
          total_tokens: text + image + delta,
        };
        expect(validationPaths(() => normalize.openaiImages(usage), "OpenAI images usage")).toEqual([
          "input_tokens",
        ]);
      }),
    );
  });
});

describe("OpenAI-compatible variants properties", () => {
  it("DeepSeek hits and misses: disjoint, summing to prompt_tokens and total_tokens", () => {
    fc.assert(
      fc.property(
        fc.record({ hit: part, miss: part, visible: part, reasoning: part }),
        fc.boolean(),
        (p, echo) => {
          const prompt = p.hit + p.miss;
          const completion = p.visible + p.reasoning;
          const usage = {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_cache_hit_tokens: p.hit,
            prompt_cache_miss_tokens: p.miss,
            ...(echo ? { prompt_tokens_details: { cached_tokens: p.hit } } : {}),
            completion_tokens_details: { reasoning_tokens: p.reasoning },
          };
          const m = normalize.openaiChat(usage);
          expectWellFormed(m);
          expect(m).toEqual(
            nonZero({
              input_tokens: p.miss,
              cached_input_tokens: p.hit,
              output_tokens: p.visible,
              reasoning_tokens: p.reasoning,
            }),
          );
          expect(sum(m, TOKEN_METERS)).toBe(prompt + completion);
        },
      ),
    );
  });

  it("DeepSeek hits + misses ≠ prompt_tokens is rejected at prompt_tokens", () => {
    fc.assert(
      fc.property(part, part, fc.integer({ min: -1000, max: 1000 }), (hit, miss, delta) => {
        fc.pre(delta !== 0 && hit + miss + delta >= hit);
        const usage = {
          prompt_tokens: hit + miss + delta,
          completion_tokens: 0,
          total_tokens: hit + miss + delta,
          prompt_cache_hit_tokens: hit,
          prompt_cache_miss_tokens: miss,
        };
        expect(validationPaths(() => normalize.openaiChat(usage), "OpenAI chat usage")).toEqual([
          "prompt_tokens",
        ]);
      }),
    );
  });

  it("xAI reasoning beside completion_tokens: meters sum to its total_tokens", () => {
    fc.assert(
      fc.property(fc.record({ text: part, cached: part, visible: part }), positive, (p, reasoning) => {
        const prompt = p.text + p.cached;
        const usage = {
          prompt_tokens: prompt,
          completion_tokens: p.visible,
          total_tokens: prompt + p.visible + reasoning,
          prompt_tokens_details: { text_tokens: prompt, cached_tokens: p.cached },
          completion_tokens_details: { reasoning_tokens: reasoning },
        };
        const m = normalize.openaiChat(usage);
        expectWellFormed(m);
        expect(m).toEqual(
          nonZero({
            input_tokens: p.text,
            cached_input_tokens: p.cached,
            output_tokens: p.visible,
            reasoning_tokens: reasoning,
          }),
        );
        expect(sum(m, TOKEN_METERS)).toBe(prompt + p.visible + reasoning);
      }),
    );
  });
});

describe("Anthropic iterations and server tools properties", () => {
  const turn = fc.record({ input: part, read: part, w5: part, w1h: part, output: part });
  const asUsage = (t: { input: number; read: number; w5: number; w1h: number; output: number }) => ({
    input_tokens: t.input,
    output_tokens: t.output,
    cache_read_input_tokens: t.read,
    cache_creation_input_tokens: t.w5 + t.w1h,
    cache_creation: { ephemeral_5m_input_tokens: t.w5, ephemeral_1h_input_tokens: t.w1h },
  });

  it("meters = top level + every compaction turn; message turns and advisors add nothing; advisors come back apart", () => {
    fc.assert(
      fc.property(
        turn,
        fc.array(fc.record({ kind: fc.constantFrom("compaction", "message", "advisor_message"), t: turn }), {
          maxLength: 4,
        }),
        fc.record({ search: fc.nat(1000), fetch: fc.nat(1000) }),
        (top, iterations, tools) => {
          const usage = {
            ...asUsage(top),
            server_tool_use: { web_search_requests: tools.search, web_fetch_requests: tools.fetch },
            iterations: iterations.map(({ kind, t }) => ({
              type: kind,
              ...(kind === "advisor_message" ? { model: "claude-opus-4-7" } : {}),
              ...asUsage(t),
            })),
          };
          const r = normalizeResponse("anthropic", { usage });
          expectWellFormed(r.meters);
          const compactions = iterations.filter((i) => i.kind === "compaction").map((i) => i.t);
          const total = (k: "input" | "read" | "w5" | "w1h" | "output") =>
            compactions.reduce((acc, t) => acc + t[k], top[k]);
          expect(r.meters).toEqual(
            nonZero({
              input_tokens: total("input"),
              cached_input_tokens: total("read"),
              cache_write_tokens: total("w5"),
              cache_write_1h_tokens: total("w1h"),
              output_tokens: total("output"),
              web_search_requests: tools.search,
              web_fetch_requests: tools.fetch,
            }),
          );
          const advisors = iterations.flatMap((i, index) =>
            i.kind === "advisor_message" ? [{ i, index }] : [],
          );
          expect(r.separatelyBilled ?? []).toEqual(
            advisors.map(({ i, index }) => ({
              path: `usage.iterations.${index}`,
              kind: "advisor",
              model: "claude-opus-4-7",
              meters: nonZero({
                input_tokens: i.t.input,
                cached_input_tokens: i.t.read,
                cache_write_tokens: i.t.w5,
                cache_write_1h_tokens: i.t.w1h,
                output_tokens: i.t.output,
              }),
            })),
          );
          // every token is counted once: the call's meters and the advisors' together hold
          // exactly the top level plus every compaction and advisor turn
          const all = [r.meters, ...(r.separatelyBilled ?? []).map((s) => s.meters)];
          const counted = all.reduce((acc, m) => acc + sum(m, TOKEN_METERS), 0);
          const turnTokens = (t: typeof top) => t.input + t.read + t.w5 + t.w1h + t.output;
          const expected =
            turnTokens(top) +
            iterations.filter((i) => i.kind !== "message").reduce((acc, i) => acc + turnTokens(i.t), 0);
          expect(counted).toBe(expected);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("OpenAI Responses hosted tool properties", () => {
  it("one web search request per web_search_call item, whatever else the output holds", () => {
    const item = fc.constantFrom(
      "web_search_call",
      "message",
      "reasoning",
      "function_call",
      "file_search_call",
    );
    fc.assert(
      fc.property(fc.array(item, { maxLength: 12 }), (types) => {
        const response = {
          usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 },
          output: types.map((type, i) => ({ type, id: `item_${i}`, status: "completed" })),
        };
        const r = normalizeResponse("openaiResponses", response);
        const searches = types.filter((t) => t === "web_search_call").length;
        expect(r.meters).toEqual(
          nonZero({ input_tokens: 10, output_tokens: 5, web_search_requests: searches }),
        );
      }),
    );
  });
});
