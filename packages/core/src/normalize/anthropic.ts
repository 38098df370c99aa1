import type { ValidationIssue } from "../errors/index.js";
import type { BuiltinMeter, MeterSet } from "../schemas/meters.js";
import { canonicalServiceTier } from "../schemas/service-tier.js";
import { anyString, anyValue, list, nullish, object, optional, parseFast } from "./fast-read.js";
import type { NormalizedResponse, SeparatelyBilledUsage } from "./result.js";
import {
  count,
  details,
  meterSet,
  n,
  optionalCount,
  optionalTier,
  safeSum,
  throwIfIssues,
  underPrefix,
  usageObject,
} from "./shared.js";

const SUBJECT = "Anthropic usage";
const RESPONSE_SUBJECT = "Anthropic response";

const CacheCreationSchema = details({
  ephemeral_5m_input_tokens: optionalCount,
  ephemeral_1h_input_tokens: optionalCount,
});

/** One entry of `usage.iterations` (compaction, advisor, server-side fallback, sampling turns). */
const IterationSchema = object({
  type: anyString,
  model: nullish(anyString),
  input_tokens: optionalCount,
  output_tokens: optionalCount,
  cache_read_input_tokens: optionalCount,
  cache_creation_input_tokens: optionalCount,
  cache_creation: CacheCreationSchema,
});

/** The `usage` object of an Anthropic Messages response (or a merged stream usage). */
export const AnthropicUsageSchema = usageObject({
  input_tokens: count,
  output_tokens: count,
  cache_read_input_tokens: optionalCount,
  cache_creation_input_tokens: optionalCount,
  cache_creation: CacheCreationSchema,
  server_tool_use: details({
    web_search_requests: optionalCount,
    web_fetch_requests: optionalCount,
  }),
  // Info only: `thinking_tokens` is inside `output_tokens` (parsed so a malformed one is reported).
  output_tokens_details: details({ thinking_tokens: optionalCount }),
  iterations: nullish(list(IterationSchema)),
  service_tier: optionalTier,
});

type TokenFields = {
  input_tokens?: number | null | undefined;
  output_tokens?: number | null | undefined;
  cache_read_input_tokens?: number | null | undefined;
  cache_creation_input_tokens?: number | null | undefined;
  cache_creation?:
    | { ephemeral_5m_input_tokens?: number | null; ephemeral_1h_input_tokens?: number | null }
    | null
    | undefined;
};

/** The token meters of one usage block (top level or one iteration); `at` prefixes issue paths. */
function tokenMeters(
  issues: ValidationIssue[],
  at: string,
  u: TokenFields,
): Partial<Record<BuiltinMeter, number>> {
  let write5m: number;
  let write1h: number;
  if (u.cache_creation) {
    write5m = n(u.cache_creation.ephemeral_5m_input_tokens);
    write1h = n(u.cache_creation.ephemeral_1h_input_tokens);
    const reported = u.cache_creation_input_tokens;
    if (
      reported !== undefined &&
      reported !== null &&
      BigInt(write5m) + BigInt(write1h) !== BigInt(reported)
    ) {
      issues.push({
        path: `${at}cache_creation`,
        message:
          "cache_creation.ephemeral_5m_input_tokens + cache_creation.ephemeral_1h_input_tokens must equal cache_creation_input_tokens",
      });
    }
  } else {
    write5m = n(u.cache_creation_input_tokens);
    write1h = 0;
  }
  return {
    input_tokens: n(u.input_tokens),
    cached_input_tokens: n(u.cache_read_input_tokens),
    cache_write_tokens: write5m,
    cache_write_1h_tokens: write1h,
    output_tokens: n(u.output_tokens),
  };
}

/** Usage normalized with everything `usage` itself says (meters, tier, other models' usage). */
export function readAnthropicUsage(usage: unknown): NormalizedResponse {
  const u = parseFast(AnthropicUsageSchema, usage, SUBJECT);
  const issues: ValidationIssue[] = [];
  const values = tokenMeters(issues, "", u);
  const separatelyBilled: SeparatelyBilledUsage[] = [];
  const iterations = u.iterations ?? [];
  const fallbackIndex = iterations.findIndex((it) => it.type === "fallback_message");
  const fallback = fallbackIndex < 0 ? undefined : iterations[fallbackIndex];

  iterations.forEach((it, i) => {
    const at = `iterations.${i}`;
    const itIssues: ValidationIssue[] = [];
    const parts = tokenMeters(itIssues, `${at}.`, it);
    issues.push(...itIssues);
    switch (it.type) {
      case "compaction":
        // Excluded from the top-level counts; billed at the request model's rates: add it.
        for (const [meter, value] of Object.entries(parts) as Array<[BuiltinMeter, number]>)
          values[meter] = safeSum(issues, at, values[meter] ?? 0, value);
        return;
      case "advisor_message":
        if (it.model === undefined || it.model === null) {
          issues.push({ path: `${at}.model`, message: "an advisor_message iteration must name its model" });
          return;
        }
        if (itIssues.length === 0)
          separatelyBilled.push({
            path: at,
            kind: "advisor",
            model: it.model,
            meters: meterSet(SUBJECT, parts),
          });
        return;
      case "message": {
        // Without a fallback, `message` iterations are the executor's own turns, already in the
        // top-level counts. Beside a `fallback_message`, they are attempts another model declined.
        if (fallback === undefined || n(it.output_tokens) === 0) return; // declined before output: free
        if (fallback.model === undefined || fallback.model === null) {
          issues.push({
            path: `iterations.${fallbackIndex}.model`,
            message: "a fallback_message iteration must name its model",
          });
          return;
        }
        if (it.model === undefined || it.model === null) {
          issues.push({
            path: `${at}.model`,
            message: "a message iteration beside a fallback_message must name its model",
          });
          return;
        }
        if (it.model === fallback.model) return; // the serving model's own turn: top level
        if (itIssues.length === 0)
          separatelyBilled.push({
            path: at,
            kind: "declined_attempt",
            model: it.model,
            meters: meterSet(SUBJECT, parts),
          });
        return;
      }
      case "fallback_message":
        return; // the attempt that served the response: the top-level counts describe it
      default:
        issues.push({
          path: `${at}.type`,
          message: "unknown iteration type: Latch does not know how Anthropic bills it",
        });
    }
  });
  throwIfIssues(SUBJECT, issues);

  const meters = meterSet(SUBJECT, {
    ...values,
    web_search_requests: n(u.server_tool_use?.web_search_requests),
    web_fetch_requests: n(u.server_tool_use?.web_fetch_requests),
  });
  return {
    meters,
    ...(u.service_tier ? { serviceTier: canonicalServiceTier(u.service_tier) } : {}),
    ...(separatelyBilled.length > 0 ? { separatelyBilled } : {}),
  };
}

/**
 * Normalizes the `usage` of an Anthropic Messages response into disjoint meters.
 *
 * Pass `message.usage`. When streaming, `message_start` carries `message.usage` (input and
 * cache counts, a provisional `output_tokens`) and each `message_delta` carries CUMULATIVE
 * `usage` (`output_tokens`, and on newer API versions the input/cache fields, `iterations` and
 * `server_tool_use` too): pass `message_start.message.usage` overlaid with the non-null fields
 * of the last `message_delta.usage` — never add deltas together.
 *
 * What includes what (Anthropic's own accounting):
 * - `input_tokens` EXCLUDES cache reads and cache writes: it is the uncached input as is.
 * - `cache_read_input_tokens` → `cached_input_tokens`.
 * - Cache writes: with the `cache_creation` TTL breakdown,
 *   `ephemeral_5m_input_tokens` → `cache_write_tokens` and
 *   `ephemeral_1h_input_tokens` → `cache_write_1h_tokens`; the breakdown must add up to
 *   `cache_creation_input_tokens` when both are present. Without the breakdown,
 *   `cache_creation_input_tokens` counts as 5-minute writes (`cache_write_tokens`).
 * - `output_tokens` INCLUDES extended-thinking tokens and stays the authoritative billed total;
 *   `output_tokens_details.thinking_tokens` is a re-tokenized approximation for observability
 *   (anthropic-sdk-typescript `BetaOutputTokensDetails`), so it is info only: nothing is moved
 *   to `reasoning_tokens` and nothing is billed twice.
 * - `server_tool_use.web_search_requests` → `web_search_requests`,
 *   `server_tool_use.web_fetch_requests` → `web_fetch_requests` (per request; Anthropic bills
 *   web search per 1,000 searches, https://platform.claude.com/docs/en/agents-and-tools/tool-use/web-search-tool).
 * - `iterations` (https://platform.claude.com/docs/en/build-with-claude/compaction): the
 *   top-level counts EXCLUDE `compaction` iterations, and "total tokens billed = the sum of all
 *   entries" — so each `compaction` iteration is ADDED (same model, same meters, its own TTL
 *   breakdown). `message` iterations are already in the top-level counts and are not added
 *   again. `advisor_message` iterations are billed at the advisor model's rates and are not in
 *   the top-level counts (https://platform.claude.com/docs/en/agents-and-tools/tool-use/advisor-tool);
 *   beside a `fallback_message` (server-side fallback), `message` iterations of another model
 *   are attempts that model declined, billed at its rates when they produced output and free
 *   otherwise (https://platform.claude.com/docs/en/build-with-claude/refusals-and-fallback).
 *   Those two are NOT in this MeterSet (another model prices them): {@link readAnthropicUsage}
 *   and `normalizeResponse("anthropic", message)` return them as `separatelyBilled`, and
 *   `record({ api: "anthropic", … })` refuses a payload that has them. An iteration type Latch
 *   does not know is rejected rather than guessed.
 *
 * Zero meters are omitted. There is no reported total to check against.
 *
 * @throws LatchValidationError (`invalid_input`, subject `"Anthropic usage"`) for a malformed
 * or missing count, a non-object, a TTL breakdown that disagrees with
 * `cache_creation_input_tokens` (reported at path `cache_creation`), or an iteration of an
 * unknown type (`iterations.<i>.type`) or without the model that bills it (`iterations.<i>.model`).
 *
 * @example
 * normalizeAnthropic({ input_tokens: 500, cache_read_input_tokens: 1500, output_tokens: 400,
 *   server_tool_use: { web_search_requests: 2 } });
 * // → { input_tokens: 500, cached_input_tokens: 1500, output_tokens: 400, web_search_requests: 2 }
 */
export function normalizeAnthropic(usage: unknown): MeterSet {
  return readAnthropicUsage(usage).meters;
}

/** An Anthropic Messages response, as far as billing reads it (its `usage`). */
export const AnthropicMessageSchema = object({ usage: optional(anyValue) });

/**
 * Normalizes a whole Anthropic Messages response (`message`, or a stream's final message with
 * the merged usage described at {@link normalizeAnthropic}): the meters of `message.usage`, the
 * tier in `usage.service_tier` (`standard`, `priority`, `batch`), and the usage of other models
 * (`separatelyBilled`, paths under `usage.`).
 *
 * @throws LatchValidationError (`invalid_input`, subject `"Anthropic response"`) naming the
 * field, e.g. `usage.output_tokens`.
 *
 * @example
 * normalizeAnthropicResponse(message);
 * // → { meters: { input_tokens: 21, output_tokens: 393, web_search_requests: 1 }, serviceTier: "priority" }
 */
export function normalizeAnthropicResponse(message: unknown): NormalizedResponse {
  const body = parseFast(AnthropicMessageSchema, message, RESPONSE_SUBJECT);
  const result = underPrefix(RESPONSE_SUBJECT, "usage", () => readAnthropicUsage(body.usage));
  if (result.separatelyBilled === undefined) return result;
  return {
    ...result,
    separatelyBilled: result.separatelyBilled.map((s) => ({ ...s, path: `usage.${s.path}` })),
  };
}
