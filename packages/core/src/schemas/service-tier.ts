/**
 * Service tiers: the same model at a different price for a different latency or capacity
 * promise. The tier a call ran in is `observation.model.tier`; the tier a price snapshot
 * prices is `snapshot.model.tier`. Absent means {@link STANDARD_TIER} on both sides.
 *
 * Provider spellings are mapped to these names by {@link canonicalServiceTier}:
 * - OpenAI `service_tier` (response body): `default` → `standard`, `priority`, `flex`, `scale`.
 * - Anthropic `usage.service_tier`: `standard`, `priority`, `batch`.
 * - Batch APIs (OpenAI `/v1/batches`, Anthropic Message Batches, Gemini batch mode) report no
 *   tier in the response: the caller declares `model.tier: "batch"`.
 */
export const SERVICE_TIERS = ["standard", "priority", "flex", "scale", "batch"] as const;
export type ServiceTier = (typeof SERVICE_TIERS)[number];

/** The tier of a call or snapshot that names none. */
export const STANDARD_TIER: ServiceTier = "standard";

const PROVIDER_SPELLINGS: ReadonlyMap<string, ServiceTier> = new Map([
  ["default", "standard"],
  ["standard", "standard"],
  ["priority", "priority"],
  ["flex", "flex"],
  ["scale", "scale"],
  ["batch", "batch"],
]);

/**
 * The canonical name of a provider-reported tier (`default` → `standard`), or the input
 * unchanged when it is not one Latch knows (a price sheet may still name it).
 */
export function canonicalServiceTier(reported: string): string {
  return PROVIDER_SPELLINGS.get(reported.toLowerCase()) ?? reported;
}

/** The tier a model reference names, with absent meaning {@link STANDARD_TIER}. */
export function serviceTierOf(model: { tier?: string | undefined }): string {
  return model.tier === undefined ? STANDARD_TIER : canonicalServiceTier(model.tier);
}
