import { types } from "node:util";
import { z } from "zod";
import type { ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { anyString, anyValue, list, nullish, object, optional, parseFast } from "./fast-read.js";
import { normalizeOpenAIImages } from "./openai-images.js";
import type { NormalizedResponse, SeparatelyBilledUsage } from "./result.js";
import {
  checkPartsWithin,
  checkTotal,
  count,
  details,
  meterSet,
  n,
  optionalCount,
  optionalTier,
  reportedOpenAITier,
  throwIfIssues,
  underPrefix,
  usageObject,
} from "./shared.js";

const SUBJECT = "OpenAI Responses usage";
const RESPONSE_SUBJECT = "OpenAI Responses response";

/** The `usage` object of an OpenAI Responses API response. */
export const OpenAIResponsesUsageSchema = usageObject({
  input_tokens: count,
  output_tokens: count,
  total_tokens: count,
  input_tokens_details: details({ cached_tokens: optionalCount, cache_write_tokens: optionalCount }),
  output_tokens_details: details({ reasoning_tokens: optionalCount }),
});

/**
 * Normalizes the `usage` of an OpenAI Responses API response into disjoint meters.
 *
 * Pass `response.usage`; when streaming, pass `event.response.usage` of the final
 * `response.completed` event (earlier events carry `usage: null`).
 *
 * What includes what:
 * - `input_tokens` INCLUDES `input_tokens_details.cached_tokens` (cache reads) and
 *   `input_tokens_details.cache_write_tokens` (cache writes), disjoint from each other
 *   (https://developers.openai.com/api/docs/guides/prompt-caching: reads, writes and the rest
 *   of the input are billed each at its own rate, writes at 1.25× input on GPT-5.6 and later),
 *   so `input_tokens (meter) = input_tokens − cached_tokens − cache_write_tokens`,
 *   `cached_input_tokens = cached_tokens`, `cache_write_tokens = cache_write_tokens`.
 * - `output_tokens` INCLUDES `output_tokens_details.reasoning_tokens`, so
 *   `output_tokens (meter) = output_tokens − reasoning_tokens`, `reasoning_tokens = reasoning_tokens`.
 * - `total_tokens` must equal `input_tokens + output_tokens`; the meters sum back to it.
 * - Hosted tools billed per call (web search) are outside `usage`: see
 *   {@link normalizeOpenAIResponsesResponse}.
 *
 * Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI Responses usage"`) for a
 * malformed or missing count, a non-object, `cached_tokens + cache_write_tokens > input_tokens`,
 * `reasoning_tokens > output_tokens`, or a `total_tokens` that disagrees with the parts.
 *
 * @example
 * normalizeOpenAIResponses({
 *   input_tokens: 2000, input_tokens_details: { cached_tokens: 1500, cache_write_tokens: 300 },
 *   output_tokens: 1000, output_tokens_details: { reasoning_tokens: 600 },
 *   total_tokens: 3000,
 * });
 * // → { input_tokens: 200, cached_input_tokens: 1500, cache_write_tokens: 300, output_tokens: 400, reasoning_tokens: 600 }
 */
export function normalizeOpenAIResponses(usage: unknown): MeterSet {
  const u = parseFast(OpenAIResponsesUsageSchema, usage, SUBJECT);
  const cached = n(u.input_tokens_details?.cached_tokens);
  const write = n(u.input_tokens_details?.cache_write_tokens);
  const reasoning = n(u.output_tokens_details?.reasoning_tokens);

  const issues: ValidationIssue[] = [];
  checkPartsWithin(
    issues,
    ["input_tokens", u.input_tokens],
    [
      ["input_tokens_details.cached_tokens", cached],
      ["input_tokens_details.cache_write_tokens", write],
    ],
  );
  checkPartsWithin(
    issues,
    ["output_tokens", u.output_tokens],
    [["output_tokens_details.reasoning_tokens", reasoning]],
  );
  checkTotal(
    issues,
    ["total_tokens", u.total_tokens],
    [
      ["input_tokens", u.input_tokens],
      ["output_tokens", u.output_tokens],
    ],
  );
  throwIfIssues(SUBJECT, issues);

  return meterSet(SUBJECT, {
    input_tokens: u.input_tokens - cached - write,
    cached_input_tokens: cached,
    cache_write_tokens: write,
    output_tokens: u.output_tokens - reasoning,
    reasoning_tokens: reasoning,
  });
}

/** An `output[]` item: only its type (and an image call's status) matter for billing. */
const OutputItemSchema = object({ type: anyString, status: nullish(anyString) });

/** A Responses API `Response`, as far as billing reads it (usage, tier, hosted tools). */
export const ResponseSchema = object({
  usage: optional(anyValue),
  service_tier: optionalTier,
  output: nullish(list(OutputItemSchema)),
  // Hosted-tool usage outside `usage` (newer API versions).
  tool_usage: nullish(
    object({
      web_search: nullish(object({ num_requests: optionalCount })),
      image_gen: optional(anyValue),
    }),
  ),
  tools: nullish(list(anyValue)),
});

/** The image model of the response's `image_generation` tool (openai-node: default `gpt-image-1`). */
const DEFAULT_IMAGE_TOOL_MODEL = "gpt-image-1";
function imageToolModel(tools: readonly unknown[] | null | undefined): string {
  for (const tool of tools ?? []) {
    if (typeof tool !== "object" || tool === null) continue;
    const { type, model } = tool as { type?: unknown; model?: unknown };
    if (type === "image_generation" && typeof model === "string" && model.length > 0) return model;
  }
  return DEFAULT_IMAGE_TOOL_MODEL;
}

/** A streaming event that wraps the final response (`response.completed`, `response.incomplete`, …). */
const ResponseEventSchema = z.object({
  type: z.string().startsWith("response."),
  response: z.record(z.string(), z.unknown()),
});

/**
 * Normalizes a whole Responses API response — the `Response` object, or the final streaming
 * event that wraps it (`response.completed`, `response.incomplete`; paths then start with
 * `response.`). Beside the meters of `usage` (see {@link normalizeOpenAIResponses}):
 *
 * - Web search (`web_search_requests`; OpenAI bills it per call, $10 per 1,000 calls, plus
 *   search content tokens that are already in `usage`: https://platform.openai.com/docs/pricing):
 *   `tool_usage.web_search.num_requests` when the response has it (the billed count, which
 *   includes searches OpenAI runs without an output item), else one request per `output[]`
 *   item of type `web_search_call`.
 * - Image generation tool: the images are generated, and billed, by the tool's image model —
 *   the `image_generation` tool's `model` in `tools[]`, default `gpt-image-1` (API reference,
 *   `tools[].model`; openai-node `Tool.ImageGeneration`) — at that model's rates
 *   (https://platform.openai.com/docs/pricing, image generation: per image by quality and
 *   size, or per image token), beside the response model's own `usage`. One observation
 *   prices one model, so they are returned as `separatelyBilled` (kind
 *   `image_generation`), never added to this call's meters: `tool_usage.image_gen`, when the
 *   response has it, is the image model's token usage (the Images API shape, see
 *   `normalizeOpenAIImages`; path `tool_usage.image_gen`); older responses carry no token
 *   usage for the tool, and each `image_generation_call` item with status `completed` is then
 *   one image of the image model (`image_count`, priced `perUnit`; path `output.<i>`, where
 *   the item's `size` and `quality` are, for price sheets that price them apart).
 * - `service_tier` → the tier (`default` → `standard`, `priority`, `flex`, `scale`); `auto`
 *   names no tier (a request value) and counts as none reported.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI Responses response"`) naming
 * the field, e.g. `usage.input_tokens` or `output.3.type`.
 *
 * @example
 * normalizeOpenAIResponsesResponse(response);
 * // → { meters: { input_tokens: 129, cached_input_tokens: 11904, output_tokens: 44, web_search_requests: 1 }, serviceTier: "priority" }
 */
export function normalizeOpenAIResponsesResponse(response: unknown): NormalizedResponse {
  if (!mayBeEvent(response)) return readResponse(response);
  const event = ResponseEventSchema.safeParse(response);
  if (!event.success) return readResponse(response);
  const result = underPrefix(RESPONSE_SUBJECT, "response", () => readResponse(event.data.response));
  if (result.separatelyBilled === undefined) return result;
  return {
    ...result,
    separatelyBilled: result.separatelyBilled.map((s) => ({ ...s, path: `response.${s.path}` })),
  };
}

/**
 * False when `response` is certainly no streaming event, as `ResponseEventSchema` would find on
 * its `type` (absent, or not a string starting with `response.`): a `Response` object has no
 * `type`, and asking the schema would build an error only to throw it away, on every call.
 * Decided without running code that could answer the schema's own read differently: an own data
 * property's value, or no `type` at all; an accessor, an inherited `type` or a Proxy go to the
 * schema, whose one read decides (as before this shortcut).
 */
function mayBeEvent(response: unknown): boolean {
  if (typeof response !== "object" || response === null) return false;
  if (types.isProxy(response)) return true;
  const own = Object.getOwnPropertyDescriptor(response, "type");
  if (own === undefined) return "type" in response;
  if (!("value" in own)) return true;
  const type = own.value;
  return typeof type === "string" && type.startsWith("response.");
}

function readResponse(response: unknown): NormalizedResponse {
  const body = parseFast(ResponseSchema, response, RESPONSE_SUBJECT);
  const usage = underPrefix(RESPONSE_SUBJECT, "usage", () => normalizeOpenAIResponses(body.usage));
  const output = body.output ?? [];
  const searchItems = output.filter((item) => item.type === "web_search_call").length;
  const searches = body.tool_usage?.web_search?.num_requests ?? searchItems;
  const imageModel = imageToolModel(body.tools);
  const separatelyBilled: SeparatelyBilledUsage[] = [];
  const imageGen = body.tool_usage?.image_gen;
  if (imageGen !== undefined && imageGen !== null) {
    // The image model's own token usage for every image of the response.
    const meters = underPrefix(RESPONSE_SUBJECT, "tool_usage.image_gen", () =>
      normalizeOpenAIImages(imageGen),
    );
    if (Object.keys(meters).length > 0) {
      separatelyBilled.push({
        path: "tool_usage.image_gen",
        kind: "image_generation",
        model: imageModel,
        meters,
      });
    }
  } else {
    // No token usage for the tool: each completed image is one image of the image model.
    output.forEach((item, i) => {
      if (item.type !== "image_generation_call" || item.status !== "completed") return;
      separatelyBilled.push({
        path: `output.${i}`,
        kind: "image_generation",
        model: imageModel,
        meters: meterSet(RESPONSE_SUBJECT, { image_count: 1 }),
      });
    });
  }
  const meters = meterSet(RESPONSE_SUBJECT, { ...usage, web_search_requests: searches });
  const serviceTier = reportedOpenAITier(body.service_tier);
  return {
    meters,
    ...(serviceTier === undefined ? {} : { serviceTier }),
    ...(separatelyBilled.length > 0 ? { separatelyBilled } : {}),
  };
}
