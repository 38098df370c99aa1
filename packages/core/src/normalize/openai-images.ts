import { LatchValidationError, type ValidationIssue } from "../errors/index.js";
import type { MeterSet } from "../schemas/meters.js";
import { anyValue, list, nullish, object, optional, parseFast } from "./fast-read.js";
import type { NormalizedResponse } from "./result.js";
import {
  checkPartsWithin,
  checkTotal,
  count,
  details,
  meterSet,
  n,
  optionalCount,
  throwIfIssues,
  underPrefix,
  usageObject,
} from "./shared.js";

const SUBJECT = "OpenAI images usage";
const RESPONSE_SUBJECT = "OpenAI images response";

/** The `usage` of an Images API response (generations, edits) or of `image_generation.completed`. */
export const OpenAIImagesUsageSchema = usageObject({
  input_tokens: count,
  output_tokens: count,
  total_tokens: count,
  input_tokens_details: usageObject({ text_tokens: optionalCount, image_tokens: optionalCount }),
  output_tokens_details: details({ text_tokens: optionalCount, image_tokens: optionalCount }),
});

/**
 * Normalizes the `usage` of an OpenAI Images API response (GPT image models: `gpt-image-1`,
 * `gpt-image-1-mini`, …) into disjoint meters.
 *
 * Pass `response.usage` of `images.generate` / `images.edit`, or `event.usage` of a stream's
 * `image_generation.completed` / `image_edit.completed` event.
 *
 * GPT image models price text input, image input and image output apart
 * (https://platform.openai.com/docs/pricing, "Image tokens"), and the usage says which is which
 * (openai-node `ImagesResponse.Usage`):
 * - `input_tokens` = `input_tokens_details.text_tokens` + `input_tokens_details.image_tokens`:
 *   `input_tokens (meter) = input_tokens − image_tokens` (the text prompt),
 *   `image_input_tokens = input_tokens_details.image_tokens` (input images, edits).
 * - `output_tokens`: with `output_tokens_details`, `image_output_tokens = image_tokens` and
 *   `output_tokens (meter) = output_tokens − image_tokens` (text output, billed at the text
 *   output rate); without it, every output token is an image token (`image_output_tokens`).
 * - `total_tokens` must equal `input_tokens + output_tokens`; the meters sum back to it.
 *
 * `input_tokens_details` is required: without it image input could only be billed at the text
 * rate. Zero meters are omitted.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI images usage"`) for a
 * malformed or missing count, a missing `input_tokens_details`, details that disagree with
 * their total, or a `total_tokens` that disagrees with the parts.
 *
 * @example
 * normalizeOpenAIImages({ input_tokens: 50, input_tokens_details: { text_tokens: 10, image_tokens: 40 },
 *   output_tokens: 4160, total_tokens: 4210 });
 * // → { input_tokens: 10, image_input_tokens: 40, image_output_tokens: 4160 }
 */
export function normalizeOpenAIImages(usage: unknown): MeterSet {
  const u = parseFast(OpenAIImagesUsageSchema, usage, SUBJECT);
  const textIn = u.input_tokens_details.text_tokens;
  const imageIn = n(u.input_tokens_details.image_tokens);
  const issues: ValidationIssue[] = [];
  if (textIn === undefined || textIn === null) {
    checkPartsWithin(
      issues,
      ["input_tokens", u.input_tokens],
      [["input_tokens_details.image_tokens", imageIn]],
    );
  } else {
    checkTotal(
      issues,
      ["input_tokens", u.input_tokens],
      [
        ["input_tokens_details.text_tokens", textIn],
        ["input_tokens_details.image_tokens", imageIn],
      ],
    );
  }
  let imageOut = u.output_tokens;
  const out = u.output_tokens_details;
  if (out !== undefined && out !== null) {
    imageOut = n(out.image_tokens);
    if (out.text_tokens === undefined || out.text_tokens === null) {
      checkPartsWithin(
        issues,
        ["output_tokens", u.output_tokens],
        [["output_tokens_details.image_tokens", imageOut]],
      );
    } else {
      checkTotal(
        issues,
        ["output_tokens", u.output_tokens],
        [
          ["output_tokens_details.text_tokens", out.text_tokens],
          ["output_tokens_details.image_tokens", imageOut],
        ],
      );
    }
  }
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
    input_tokens: u.input_tokens - imageIn,
    image_input_tokens: imageIn,
    output_tokens: u.output_tokens - imageOut,
    image_output_tokens: imageOut,
  });
}

/** An Images API response, as far as billing reads it (`usage`, else the images in `data`). */
export const ImagesResponseSchema = object({ usage: optional(anyValue), data: nullish(list(anyValue)) });

/**
 * Normalizes a whole Images API response (`ImagesResponse`). With `usage` (GPT image models,
 * billed by tokens) the meters are those of {@link normalizeOpenAIImages}; without it (DALL·E 2
 * and 3, billed per image by size and quality) each entry of `data` is one generated image
 * (`image_count`, priced `perUnit`).
 *
 * @throws LatchValidationError (`invalid_input`, subject `"OpenAI images response"`) naming the
 * field, e.g. `usage.input_tokens_details`, or `data` when neither `usage` nor `data` is there.
 *
 * @example
 * normalizeOpenAIImagesResponse({ created: 1, data: [{ url: "…" }, { url: "…" }] }); // → { meters: { image_count: 2 } }
 */
export function normalizeOpenAIImagesResponse(response: unknown): NormalizedResponse {
  const body = parseFast(ImagesResponseSchema, response, RESPONSE_SUBJECT);
  if (body.usage !== undefined && body.usage !== null) {
    return { meters: underPrefix(RESPONSE_SUBJECT, "usage", () => normalizeOpenAIImages(body.usage)) };
  }
  if (body.data === undefined || body.data === null) {
    throw LatchValidationError.at(
      RESPONSE_SUBJECT,
      "data",
      "expected usage (GPT image models) or data (DALL·E)",
    );
  }
  return { meters: meterSet(RESPONSE_SUBJECT, { image_count: body.data.length }) };
}
