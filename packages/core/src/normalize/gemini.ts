import type { z } from "zod";
import type { ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { canonicalServiceTier } from "../schemas/service-tier.js";
import { anyString, anyValue, list, nullish, object, optional, parseFast } from "./fast-read.js";
import type { NormalizedResponse } from "./result.js";
import {
  checkPartsWithin,
  checkTotal,
  count,
  meterSet,
  n,
  optionalCount,
  optionalTier,
  throwIfIssues,
  underPrefix,
  usageObject,
} from "./shared.js";

const SUBJECT = "Gemini usage";

/** One `ModalityTokenCount`: `{ modality: "TEXT" | "AUDIO" | "IMAGE" | …, tokenCount }`. */
const ModalityTokenCountSchema = object({
  // Any string: Google adds modalities; only AUDIO (prompt, cache, output) and IMAGE (output) are metered apart.
  modality: nullish(anyString),
  // proto3 JSON omits zero values, so an absent tokenCount means 0.
  tokenCount: optionalCount,
});
const ModalityListSchema = nullish(list(ModalityTokenCountSchema));

/** Gemini `usageMetadata` (generateContent / streamGenerateContent, AI Studio or Vertex AI). */
export const GeminiUsageSchema = usageObject({
  promptTokenCount: count,
  candidatesTokenCount: optionalCount,
  thoughtsTokenCount: optionalCount,
  cachedContentTokenCount: optionalCount,
  toolUsePromptTokenCount: optionalCount,
  totalTokenCount: optionalCount,
  promptTokensDetails: ModalityListSchema,
  cacheTokensDetails: ModalityListSchema,
  candidatesTokensDetails: ModalityListSchema,
  // The tier that served the call (Gemini API `serviceTier`: standard, flex, priority).
  serviceTier: optionalTier,
  // Vertex AI's equivalent: which quota served the call (see VERTEX_TRAFFIC_TIERS).
  trafficType: optionalTier,
});

/**
 * Vertex AI `usageMetadata.trafficType` → tier
 * (https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest/v1/GenerateContentResponse#TrafficType):
 * `ON_DEMAND` is pay-as-you-go (standard), `ON_DEMAND_PRIORITY` and `ON_DEMAND_FLEX` the
 * priority and flex pay-as-you-go tiers. `TRAFFIC_TYPE_UNSPECIFIED` reports nothing.
 * `PROVISIONED_THROUGHPUT` (capacity bought ahead, not billed per token) and any value Google
 * adds later pass through lowercased (`provisioned_throughput`): a price sheet prices them with
 * a snapshot for that tier, otherwise the call is `unpriced` (`no_snapshot_for_tier`) — never
 * billed at the pay-as-you-go price.
 */
const VERTEX_TRAFFIC_TIERS: ReadonlyMap<string, string | undefined> = new Map([
  ["TRAFFIC_TYPE_UNSPECIFIED", undefined],
  ["ON_DEMAND", "standard"],
  ["ON_DEMAND_PRIORITY", "priority"],
  ["ON_DEMAND_FLEX", "flex"],
]);

/** The tier a `usageMetadata` reports: Gemini API `serviceTier`, else Vertex `trafficType`. */
function reportedTier(u: { serviceTier?: string | null; trafficType?: string | null }): string | undefined {
  if (u.serviceTier) return canonicalServiceTier(u.serviceTier);
  if (!u.trafficType) return undefined;
  const known = VERTEX_TRAFFIC_TIERS.has(u.trafficType);
  return known ? VERTEX_TRAFFIC_TIERS.get(u.trafficType) : canonicalServiceTier(u.trafficType.toLowerCase());
}

type ModalityList = z.output<typeof ModalityListSchema>;

/** Sum of the entries of one modality in a modality list (0 when absent). */
function modalityTokens(list: ModalityList, modality: "AUDIO" | "IMAGE"): number {
  let sum = 0;
  for (const entry of list ?? []) if (entry.modality === modality) sum += n(entry.tokenCount);
  return sum;
}

/**
 * Normalizes Gemini `usageMetadata` into disjoint meters.
 *
 * Pass `response.usageMetadata`. When streaming, every chunk carries `usageMetadata`; the last
 * chunk holds the totals for the whole response, so pass the last chunk's (never a sum).
 *
 * What includes what:
 * - `promptTokenCount` INCLUDES `cachedContentTokenCount`, and `cacheTokensDetails` breaks the
 *   cached part down by modality: cached `AUDIO` is `cached_audio_input_tokens` (priced apart:
 *   Gemini 2.x/3 Flash bill cached audio at $0.10/Mtok, cached text at $0.03/Mtok) and
 *   `cached_input_tokens = cachedContentTokenCount − cached audio` (text, image, video and
 *   documents, which Google bills at the cached text rate).
 * - `toolUsePromptTokenCount` (tool results fed back to the model, e.g. search grounding or
 *   code execution) is NOT in `promptTokenCount`; it is input billed at the input rate, so it
 *   is ADDED to `input_tokens`.
 * - Audio input: `promptTokensDetails` breaks the whole prompt (cached part included) down by
 *   modality and `cacheTokensDetails` the cached part. Uncached audio
 *   (`AUDIO` in `promptTokensDetails` − `AUDIO` in `cacheTokensDetails`) is
 *   `audio_input_tokens` and is taken out of `input_tokens`; cached audio is
 *   `cached_audio_input_tokens`.
 *   So `input_tokens = promptTokenCount − cachedContentTokenCount − uncached audio + toolUsePromptTokenCount`,
 *   and every prompt token is in exactly one of `input_tokens`, `cached_input_tokens`,
 *   `cached_audio_input_tokens`, `audio_input_tokens`.
 * - `candidatesTokenCount` EXCLUDES `thoughtsTokenCount`: `reasoning_tokens = thoughtsTokenCount`.
 *   `candidatesTokensDetails` breaks `candidatesTokenCount` down by modality: `AUDIO` is
 *   `audio_output_tokens`, `IMAGE` is `image_output_tokens` (generated images, e.g.
 *   gemini-2.5-flash-image: $30/MTok against $2.50/MTok for text output), and
 *   `output_tokens = candidatesTokenCount − audio output − image output` (the text, including
 *   text the details do not list).
 * - Image, video and document INPUT tokens are billed at the text input rate by Google
 *   (https://ai.google.dev/gemini-api/docs/pricing: "Input price (text / image / video)"; only
 *   audio input has its own price), so IMAGE / VIDEO / DOCUMENT in `promptTokensDetails` stay
 *   in `input_tokens`; `image_input_tokens` and `image_count` are never set.
 * - `totalTokenCount`, when present, must equal
 *   `promptTokenCount + candidatesTokenCount + thoughtsTokenCount + toolUsePromptTokenCount`;
 *   the meters sum back to it.
 *
 * Only `promptTokenCount` is required (Gemini omits zero counts, e.g. `candidatesTokenCount`
 * on a blocked prompt). Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"Gemini usage"`) for a malformed or
 * missing count, a non-object, or an inconsistent payload (cache larger than the prompt, audio
 * or image larger than its count, a `totalTokenCount` that disagrees with the parts).
 *
 * @example
 * normalizeGemini({
 *   promptTokenCount: 2000, cachedContentTokenCount: 1500,
 *   candidatesTokenCount: 400, thoughtsTokenCount: 600, totalTokenCount: 3000,
 * });
 * // → { input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400, reasoning_tokens: 600 }
 *
 * @example
 * // An audio file held in a context cache: 32,000 cached audio + 20 cached text tokens.
 * normalizeGemini({
 *   promptTokenCount: 33000, cachedContentTokenCount: 32020, candidatesTokenCount: 9, totalTokenCount: 33009,
 *   promptTokensDetails: [{ modality: "TEXT", tokenCount: 1000 }, { modality: "AUDIO", tokenCount: 32000 }],
 *   cacheTokensDetails: [{ modality: "TEXT", tokenCount: 20 }, { modality: "AUDIO", tokenCount: 32000 }],
 * });
 * // → { input_tokens: 980, cached_input_tokens: 20, output_tokens: 9, cached_audio_input_tokens: 32000 }
 */
export function normalizeGemini(usageMetadata: unknown): MeterSet {
  return readGeminiUsage(usageMetadata).meters;
}

/** `usageMetadata` normalized with the tier it reports (`serviceTier` or `trafficType`), if any. */
export function readGeminiUsage(usageMetadata: unknown): NormalizedResponse {
  const u = parseFast(GeminiUsageSchema, usageMetadata, SUBJECT);
  const prompt = u.promptTokenCount;
  const cached = n(u.cachedContentTokenCount);
  const toolUse = n(u.toolUsePromptTokenCount);
  const candidates = n(u.candidatesTokenCount);
  const thoughts = n(u.thoughtsTokenCount);
  const promptAudio = modalityTokens(u.promptTokensDetails, "AUDIO");
  const cachedAudio = modalityTokens(u.cacheTokensDetails, "AUDIO");
  const outputAudio = modalityTokens(u.candidatesTokensDetails, "AUDIO");
  const outputImage = modalityTokens(u.candidatesTokensDetails, "IMAGE");

  const issues: ValidationIssue[] = [];
  checkPartsWithin(issues, ["promptTokenCount", prompt], [["cachedContentTokenCount", cached]]);
  checkPartsWithin(issues, ["promptTokenCount", prompt], [["promptTokensDetails", promptAudio]]);
  checkPartsWithin(issues, ["cachedContentTokenCount", cached], [["cacheTokensDetails", cachedAudio]]);
  if (issues.length === 0) {
    checkPartsWithin(
      issues,
      ["promptTokensDetails (AUDIO)", promptAudio],
      [["cacheTokensDetails", cachedAudio]],
    );
  }
  if (issues.length === 0) {
    // The uncached audio must fit in the uncached prompt.
    checkPartsWithin(
      issues,
      ["promptTokenCount", prompt],
      [
        ["cachedContentTokenCount", cached],
        ["promptTokensDetails", promptAudio - cachedAudio],
      ],
    );
  }
  checkPartsWithin(
    issues,
    ["candidatesTokenCount", candidates],
    [["candidatesTokensDetails", outputAudio + outputImage]],
  );
  if (u.totalTokenCount !== undefined && u.totalTokenCount !== null) {
    checkTotal(
      issues,
      ["totalTokenCount", u.totalTokenCount],
      [
        ["promptTokenCount", prompt],
        ["candidatesTokenCount", candidates],
        ["thoughtsTokenCount", thoughts],
        ["toolUsePromptTokenCount", toolUse],
      ],
    );
  }
  const uncachedAudio = promptAudio - cachedAudio;
  const input = prompt - cached - uncachedAudio + toolUse;
  if (issues.length === 0 && !Number.isSafeInteger(input)) {
    issues.push({
      path: "toolUsePromptTokenCount",
      message: "input tokens (with tool-use prompt) exceed 2^53-1",
    });
  }
  throwIfIssues(SUBJECT, issues);

  const meters = meterSet(SUBJECT, {
    input_tokens: input,
    cached_input_tokens: cached - cachedAudio,
    audio_input_tokens: uncachedAudio,
    output_tokens: candidates - outputAudio - outputImage,
    reasoning_tokens: thoughts,
    audio_output_tokens: outputAudio,
    image_output_tokens: outputImage,
    cached_audio_input_tokens: cachedAudio,
  });
  const serviceTier = reportedTier(u);
  return serviceTier === undefined ? { meters } : { meters, serviceTier };
}

/** A Gemini `GenerateContentResponse`, as far as billing reads it (its `usageMetadata`). */
export const GeminiResponseSchema = object({ usageMetadata: optional(anyValue) });

/**
 * Normalizes a whole Gemini `GenerateContentResponse` (or a stream's last chunk): the meters of
 * its `usageMetadata` (see {@link normalizeGemini}) and the tier it reports: the Gemini API's
 * `usageMetadata.serviceTier` (`standard`, `flex`, `priority`), else Vertex AI's
 * `usageMetadata.trafficType` (`ON_DEMAND` → `standard`, `ON_DEMAND_FLEX` → `flex`,
 * `ON_DEMAND_PRIORITY` → `priority`, `PROVISIONED_THROUGHPUT` → `provisioned_throughput`).
 * Declare batch-mode calls with `model.tier: "batch"`.
 * Gemini bills grounding and other tool use through `toolUsePromptTokenCount`, already metered.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"Gemini response"`) naming the field,
 * e.g. `usageMetadata.promptTokenCount`.
 *
 * @example
 * normalizeGeminiResponse(response);
 * // → { meters: { input_tokens: 10, output_tokens: 272, image_output_tokens: 1120 }, serviceTier: "standard" }
 */
export function normalizeGeminiResponse(response: unknown): NormalizedResponse {
  const body = parseFast(GeminiResponseSchema, response, "Gemini response");
  return underPrefix("Gemini response", "usageMetadata", () => readGeminiUsage(body.usageMetadata));
}
