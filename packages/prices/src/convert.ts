import { importLiteLLMCostMap, LatchValidationError, type PriceSnapshot } from "@latch/core";
import type { LiteLLMSkippedField } from "@latch/core/adapter";
import {
  LITELLM_COPYRIGHT,
  LITELLM_LICENCE,
  LITELLM_MAP_URL,
  LITELLM_SOURCE_NAME,
  PRICE_CATALOG_FORMAT,
  type PriceCatalog,
  type PriceCatalogSource,
} from "./catalog.js";
import { duplicateEntryKeys } from "./duplicate-keys.js";

/**
 * LiteLLM `mode`s whose entries become snapshots: calls Latch meters in tokens (and images).
 * `responses` is OpenAI's Responses-only models (o1-pro, codex), billed like chat. An entry
 * without `mode` is imported too: LiteLLM leaves it out on some chat entries.
 */
export const CATALOG_MODES: readonly string[] = Object.freeze([
  "chat",
  "completion",
  "responses",
  "embedding",
  "image_generation",
  "image_edit",
]);

/** Where a cost map came from, recorded in the catalog beside every snapshot made from it. */
export interface LiteLlmSourceInput {
  /** Where the map was read. Default: LiteLLM's map on its `main` branch. */
  url?: string;
  /** The LiteLLM commit the map is from, when known. */
  commit?: string;
  /** The HTTP `ETag` the map was served with, when fetched over HTTP. */
  etag?: string;
  /** When it was fetched, ISO 8601 UTC. Default: now. */
  fetchedAt?: string;
}

/** Options of {@link convertLiteLlmCostMap}. */
export interface ConvertOptions {
  source?: LiteLlmSourceInput;
  /** When these prices take effect, ISO 8601 UTC. Default: `source.fetchedAt`. */
  effectiveFrom?: string;
  /** Also convert entries whose every price is 0 (LiteLLM's placeholders). Default `false`. */
  includeFree?: boolean;
}

/** An entry or a price field left out of the catalog, and why (never silently dropped). */
export type CatalogSkip =
  | LiteLLMSkippedField
  | { model: string; field: "mode"; code: "unsupportedMode" | "duplicateMode"; reason: string };

/** What {@link convertLiteLlmCostMap} returns. */
export interface ConvertResult {
  /** A one-source catalog: every snapshot attributed to `catalog.sources[0]`. */
  catalog: PriceCatalog;
  skipped: CatalogSkip[];
}

const DUPLICATE_MODE =
  "the entry gives mode more than once: which one applies is unknown, so the entry is left out";
const UNSUPPORTED_MODE =
  "mode is not chat, completion, responses, embedding or image generation: not metered in tokens or images";

/**
 * Converts LiteLLM's model cost map (`model_prices_and_context_window.json`, MIT) into a Latch
 * price catalog, exactly. The prices are read by `importLiteLLMCostMap` of `@latch/core`: each
 * JSON number is taken as its source text and converted with decimal arithmetic, never through
 * a float (`2.5e-06` per token → `"2.5"` per million; `1.1e-06` → `"1.1"`, not
 * `1.0999999999999999`); cache read and write prices, `*_above_<n>k_tokens` long-context tiers
 * and the `_batches` / `_flex` / `_priority` service-tier variants map to meters, tiers and
 * snapshots as that function documents. On top of it this:
 * - keeps only entries whose `mode` is one of {@link CATALOG_MODES} (or absent); the others are
 *   reported once (`unsupportedMode`) instead of field by field;
 * - dates every snapshot at `effectiveFrom` (default: when the map was fetched) and records
 *   where the map came from (URL, commit, ETag, fetch time, MIT licence and copyright).
 *
 * Entries that cannot be priced are reported in `skipped`, never imported at $0.
 *
 * @throws LatchValidationError (`invalid_input`) when the text is not JSON or not an object of
 *   models, or an option is malformed (`source.fetchedAt`, `effectiveFrom`).
 *
 * @example
 * const { catalog, skipped } = convertLiteLlmCostMap(
 *   '{"gpt-4o": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 2.5e-06}}',
 *   { source: { fetchedAt: "2026-12-01T00:00:00Z", commit: "00035b69" } },
 * );
 * // catalog.entries[0].snapshot.prices.input_tokens → { perMillion: "2.5" }
 * // catalog.sources[0] → { name: "LiteLLM model cost map", url: "https://…", commit: "00035b69",
 * //   fetchedAt: "2026-12-01T00:00:00Z", licence: "MIT", copyright: "Copyright (c) 2023 Berri AI" }
 */
export function convertLiteLlmCostMap(json: string, options: ConvertOptions = {}): ConvertResult {
  const source = sourceOf(options.source ?? {});
  if (options.includeFree === true) source.includeFree = true;
  const effectiveFrom = options.effectiveFrom ?? source.fetchedAt;
  const { snapshots, skipped } = importLiteLLMCostMap(json, {
    effectiveFrom,
    includeFree: options.includeFree ?? false,
  });

  const excluded = unsupportedModels(json);
  // A repeated `mode` (JSON.parse keeps the last) could smuggle a rerank entry in as chat, or
  // the reverse: the entry is left out, whatever its last mode says.
  const twice = new Set<string>();
  for (const [model, keys] of duplicateEntryKeys(json)) if (keys.has("mode")) twice.add(model);
  const out: CatalogSkip[] = [];
  const reported = new Set<string>();
  const exclude = (model: string) => {
    if (reported.has(model)) return;
    reported.add(model);
    out.push(
      twice.has(model)
        ? { model, field: "mode", code: "duplicateMode", reason: DUPLICATE_MODE }
        : { model, field: "mode", code: "unsupportedMode", reason: UNSUPPORTED_MODE },
    );
  };
  for (const skip of skipped) {
    if (!excluded.has(skip.model) && !twice.has(skip.model)) out.push(skip);
    else exclude(skip.model);
  }
  const kept: PriceSnapshot[] = [];
  for (const snapshot of snapshots) {
    const model = snapshot.model.billableModel;
    if (!excluded.has(model) && !twice.has(model)) kept.push(snapshot);
    else exclude(model);
  }
  return {
    catalog: {
      format: PRICE_CATALOG_FORMAT,
      sources: [source],
      entries: kept.map((snapshot) => ({ source: 0, snapshot })),
    },
    skipped: out,
  };
}

/**
 * Models whose `mode` is present and not a catalog mode. Modes are strings, so the plain
 * parser reads them exactly; prices are never read here. The importer has already refused
 * text that is not a JSON object.
 */
function unsupportedModels(json: string): Set<string> {
  const root = JSON.parse(json) as Record<string, unknown>;
  const out = new Set<string>();
  for (const [model, entry] of Object.entries(root)) {
    if (model === "sample_spec" || typeof entry !== "object" || entry === null) continue; // the importer reports it
    const mode = (entry as { mode?: unknown }).mode;
    if (mode !== undefined && (typeof mode !== "string" || !CATALOG_MODES.includes(mode))) out.add(model);
  }
  return out;
}

function sourceOf(input: LiteLlmSourceInput): PriceCatalogSource {
  const fetchedAt = input.fetchedAt ?? new Date().toISOString();
  if (!isIsoUtc(fetchedAt)) {
    throw LatchValidationError.at("LiteLLM source", "source.fetchedAt", "expected an ISO 8601 UTC timestamp");
  }
  const source: PriceCatalogSource = {
    name: LITELLM_SOURCE_NAME,
    url: input.url ?? LITELLM_MAP_URL,
    fetchedAt,
    licence: LITELLM_LICENCE,
    copyright: LITELLM_COPYRIGHT,
  };
  if (input.commit !== undefined) source.commit = input.commit;
  if (input.etag !== undefined) source.etag = input.etag;
  for (const [field, value] of Object.entries({
    url: source.url,
    commit: source.commit,
    etag: source.etag,
  })) {
    if (value !== undefined && (typeof value !== "string" || value.length === 0 || value.length > 2048)) {
      throw LatchValidationError.at("LiteLLM source", `source.${field}`, "expected 1 to 2,048 characters");
    }
  }
  return source;
}

function isIsoUtc(value: unknown): value is string {
  return (
    typeof value === "string" &&
    /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/.test(value) &&
    !Number.isNaN(Date.parse(value))
  );
}
