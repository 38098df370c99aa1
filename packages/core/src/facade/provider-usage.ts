import { LatchValidationError, type ValidationIssue } from "../errors/index.js";
import { normalizeResponse, normalizeUsageDetail } from "../normalize/index.js";
import type { NormalizedResponse } from "../normalize/result.js";
import { parseObservation } from "../observation/parse.js";
import { TOKEN_METERS } from "../schemas/meters.js";
import type { UsageObservation, UsageObservationInput } from "../schemas/observation.js";
import { parseWith } from "../schemas/parse.js";
import { canonicalServiceTier } from "../schemas/service-tier.js";
import { fastParseProviderUsage } from "./provider-usage-fast.js";
import { ProviderUsageSchema, type UsageApi } from "./provider-usage-schema.js";
import type { ProviderResponse, ProviderUsage } from "./provider-usage-types.js";

export { ProviderUsageSchema, type UsageApi } from "./provider-usage-schema.js";

/** The observation around a provider payload: meters are optional and ADDED to the normalized ones. */
export type ProviderObservationInput = Omit<UsageObservationInput, "meters"> & {
  /**
   * Meters the payload does not carry (e.g. `custom:…`, a tool the provider bills apart). A meter
   * the normalizer also gives, a non-zero token meter (the payload's token counts are complete:
   * e.g. `input_tokens` beside an all-cached prompt, `reasoning_tokens` beside Anthropic's
   * `output_tokens`, which include thinking) and an `image_count` beside `image_output_tokens`
   * are `invalid_input`: each would count the same tokens or images twice.
   */
  meters?: UsageObservationInput["meters"];
};

/**
 * One provider API's payload plus everything else an observation needs: exactly one of `usage`
 * (the usage object, e.g. `completion.usage`, typed {@link ProviderUsage}) or `response` (the
 * whole response body, typed {@link ProviderResponse}, read with `normalizeResponse`: service
 * tier, hosted tool calls outside `usage`). The types catch a payload of the wrong provider at
 * compile time; `record()` still validates every payload at run time.
 */
export type ProviderUsageInputOf<A extends UsageApi> =
  | { api: A; usage: ProviderUsage<A>; response?: undefined; observation: ProviderObservationInput }
  | { api: A; response: ProviderResponse<A>; usage?: undefined; observation: ProviderObservationInput };

/**
 * A provider's payload for any of the APIs in `A` (default: every `UsageApi`): the union of
 * {@link ProviderUsageInputOf} per API, discriminated by `api`.
 *
 * @example
 * const input: ProviderUsageInput = { api: "openaiChat", usage: completion.usage, observation: call };
 */
export type ProviderUsageInput<A extends UsageApi = UsageApi> = {
  [K in A]: ProviderUsageInputOf<K>;
}[A];

const SUBJECT = "ProviderUsageInput";

/** True for `{ api, … }`: a provider payload rather than a ready observation. */
export function isProviderUsageInput(input: unknown): input is ProviderUsageInput {
  return typeof input === "object" && input !== null && "api" in input;
}

/**
 * The observation `record()` stores: a ready observation as is, or a provider payload
 * normalized and merged with its `observation`.
 *
 * - Meters: the normalized meters plus the caller's `observation.meters` (for what the payload
 *   does not carry, e.g. `custom:` meters or a tool the provider bills apart). A meter given by
 *   both is `invalid_input` at `observation.meters.<meter>`: counting it once would drop one of
 *   them, counting it twice would double bill. So is a non-zero token meter the normalizer
 *   omitted: the payload's token counts are complete (they add up to its total), so the caller's
 *   tokens are tokens it already counted under another meter (`input_tokens` beside an
 *   all-cached prompt's `cached_input_tokens`, `reasoning_tokens` beside Anthropic's
 *   `output_tokens`); and an `image_count` beside `image_output_tokens` (the same images).
 * - Tier: a tier the provider reports becomes `observation.model.tier`. A caller-declared tier
 *   must agree (compared by canonical name, `default` = `standard`), except `batch`: batch APIs
 *   report the standard tier inside their results (OpenAI batch output bodies say
 *   `service_tier: "default"`) and bill the batch discount on the batch, so a caller's `batch`
 *   stands over a reported `standard`. Any other disagreement is `invalid_input` at
 *   `observation.model.tier`.
 * - Usage billed at another model's rates (Anthropic `advisor_message` iterations, attempts a
 *   server-side fallback declined, OpenAI's image generation tool) is `invalid_input` naming
 *   its path, and nothing is stored. The provider bills it, at that other model's prices
 *   (Anthropic advisor tool: the top-level usage is the executor's, each advisor turn is
 *   billed at the advisor model's rates), and one observation prices one model: rating only
 *   the call's own meters would silently drop a billed part, and rating that part at the
 *   call's model would misprice it. Record such a payload in parts with `normalizeResponse`:
 *
 *   ```ts
 *   const { meters, serviceTier, separatelyBilled = [] } = normalizeResponse("anthropic", message);
 *   await latch.record({ ...call, meters, model: { billableModel: "claude-sonnet-4-6", tier: serviceTier } });
 *   for (const [i, part] of separatelyBilled.entries())
 *     await latch.record({ ...call, eventId: `${call.eventId}:${part.kind}${i}`,
 *       model: { billableModel: part.model }, meters: part.meters });
 *   ```
 *
 * Issue paths of the payload are prefixed with `usage.` or `response.`. Pure and synchronous:
 * offline raters (`latch rate`) use it to read provider lines exactly as `record()` does.
 *
 * @example
 * const obs = toObservation({ api: "anthropic", usage: message.usage, observation: call });
 * // obs.meters: the normalized meters (+ call.meters); obs.model.tier: usage.service_tier
 */
export function toObservation(input: UsageObservationInput | ProviderUsageInput): UsageObservation {
  if (!isProviderUsageInput(input)) return parseObservation(input);
  const p = fastParseProviderUsage(input) ?? parseWith(ProviderUsageSchema, input, SUBJECT);
  const fromResponse = p.response !== undefined;
  const prefix = fromResponse ? "response" : "usage";
  const normalized = prefixed(prefix, () =>
    fromResponse ? normalizeResponse(p.api, p.response) : normalizeUsageDetail(p.api, p.usage),
  );

  const issues: ValidationIssue[] = [];
  for (const extra of normalized.separatelyBilled ?? []) {
    issues.push({
      path: `${prefix}.${extra.path}`,
      message: `billed at another model's rates (${extra.kind}): record the payload in parts, normalizeResponse().meters as this call and each of its separatelyBilled entries as its own observation`,
    });
  }
  const meters = mergeMeters(issues, normalized, p.observation.meters);
  const model = withTier(issues, normalized.serviceTier, p.observation.model);
  if (issues.length > 0) throw new LatchValidationError({ subject: SUBJECT, issues });
  // `p.observation` is the parse's own copy of the caller's (the record schema's or the
  // pre-check's), held by nobody else: completed in place rather than spread into another copy
  // (same keys, same order: a key already there keeps its place, a new one comes last).
  const observation = p.observation;
  observation.meters = meters;
  if (model !== undefined) observation.model = model;
  return parseObservation(observation);
}

function prefixed(prefix: string, fn: () => NormalizedResponse): NormalizedResponse {
  try {
    return fn();
  } catch (error) {
    if (!(error instanceof LatchValidationError)) throw error;
    throw new LatchValidationError({
      subject: error.subject,
      issues: error.issues.map((i) => ({
        path: i.path ? `${prefix}.${i.path}` : prefix,
        message: i.message,
      })),
      cause: error,
    });
  }
}

/**
 * Normalized meters plus the caller's; a meter in both is an issue. Values are checked later.
 * Without caller meters, the normalizer's own (frozen) set: `parseObservation` copies it anyway.
 */
function mergeMeters(
  issues: ValidationIssue[],
  normalized: NormalizedResponse,
  given: unknown,
): Readonly<Record<string, unknown>> {
  if (given === undefined) return normalized.meters;
  const merged: Record<string, unknown> = { ...normalized.meters };
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    issues.push({ path: "observation.meters", message: "expected an object" });
    return merged;
  }
  for (const [meter, value] of Object.entries(given)) {
    if (Object.hasOwn(normalized.meters, meter)) {
      issues.push({
        path: `observation.meters.${meter}`,
        message: "also given by the provider payload: a meter is counted once",
      });
      continue;
    }
    if (value !== 0 && countedElsewhere(meter, normalized.meters)) {
      issues.push({
        path: `observation.meters.${meter}`,
        message:
          "already counted by the provider payload under another meter: its token and image counts are complete",
      });
      continue;
    }
    merged[meter] = value;
  }
  return merged;
}

/**
 * Whether a caller meter the normalizer did not give counts what the payload already counted:
 * any token meter (the payload's token counts are exhaustive), or images already metered as tokens.
 */
function countedElsewhere(meter: string, normalized: NormalizedResponse["meters"]): boolean {
  if ((TOKEN_METERS as readonly string[]).includes(meter)) return true;
  return meter === "image_count" && normalized.image_output_tokens !== undefined;
}

/** The observation's model with the reported tier, or `undefined` to keep the caller's as is. */
function withTier(issues: ValidationIssue[], reported: string | undefined, model: unknown): unknown {
  if (reported === undefined || typeof model !== "object" || model === null) return undefined;
  const declared = (model as { tier?: unknown }).tier;
  if (declared === undefined) return { ...model, tier: reported };
  if (typeof declared !== "string") return undefined; // parseObservation names the bad field
  const mine = canonicalServiceTier(declared);
  if (mine === reported) return { ...model, tier: reported };
  if (mine === "batch" && reported === "standard") return undefined;
  issues.push({
    path: "observation.model.tier",
    message: "disagrees with the service tier the provider reports",
  });
  return undefined;
}
