import { LatchDecimal } from "../money/decimal.js";

/**
 * One input price as a price source states it, per million tokens: the base price and, for a
 * long-context entry, the price above each prompt-token threshold (strict `>`), in any order.
 */
export interface ImportedPriceSchedule {
  readonly base: string;
  readonly above?: ReadonlyArray<readonly [threshold: number, perMillion: string]>;
}

/** What a price import read about one snapshot, for {@link cachedAudioAsCachedText}. */
export interface CachedAudioSourceFacts {
  /**
   * The source prices cached audio itself (LiteLLM `cache_read_input_audio_token_cost` in any
   * form or tier, genai-prices `cache_audio_read_mtok`), readable or not.
   */
  cachedAudioPriced: boolean;
  /** The snapshot prices `cached_input_tokens` (flat or tiered). */
  cachedTextPriced: boolean;
  /**
   * The source's (uncached) audio input price for the snapshot: `undefined` when it states none,
   * `"unreadable"` when it states one the import could not read (bad number, conflicting fields).
   */
  audioInput: ImportedPriceSchedule | "unreadable" | undefined;
  /** The source's text input price for the snapshot; `undefined` when absent or unreadable. */
  textInput: ImportedPriceSchedule | undefined;
}

/**
 * Whether a price import adds `cached_audio_input_tokens: { as: "cached_input_tokens" }` to a
 * snapshot — one rule for the LiteLLM importer and the genai-prices converter (`@latch/prices`).
 *
 * Both sources' own cost code bill a cache hit of audio at the cached text price when the model
 * has no cached-audio price: LiteLLM's `generic_cost_per_token` bills every cache hit (one
 * `cached_tokens` count, any modality) at `cache_read_input_token_cost`; genai-prices'
 * `calcPrice` bills `cache_audio_read_tokens` at `cache_read_mtok` when `cache_audio_read_mtok`
 * is absent. The alias reproduces that only where it is also the provider's price: the source
 * prices no cached audio, the snapshot prices cached text, and the source does not price audio
 * input apart from text (no audio input price, or the text input price at every threshold).
 * Where audio input is priced apart (Gemini 2.x Flash: $1/Mtok audio against $0.30/Mtok text),
 * the missing price is the cached-audio one, not the cached text one: no alias, and a call with
 * cached audio stays unpriced (reported, never billed at a guess).
 */
export function cachedAudioAsCachedText(facts: CachedAudioSourceFacts): boolean {
  if (facts.cachedAudioPriced || !facts.cachedTextPriced) return false;
  if (facts.audioInput === undefined) return true;
  if (facts.audioInput === "unreadable" || facts.textInput === undefined) return false;
  return sameSchedule(facts.audioInput, facts.textInput);
}

function sameSchedule(a: ImportedPriceSchedule, b: ImportedPriceSchedule): boolean {
  if (!samePrice(a.base, b.base)) return false;
  const above = (s: ImportedPriceSchedule) => new Map(s.above ?? []);
  const aa = above(a);
  const ba = above(b);
  if (aa.size !== ba.size || aa.size !== (a.above ?? []).length || ba.size !== (b.above ?? []).length)
    return false;
  for (const [threshold, price] of aa) {
    const other = ba.get(threshold);
    if (other === undefined || !samePrice(price, other)) return false;
  }
  return true;
}

function samePrice(a: string, b: string): boolean {
  try {
    return new LatchDecimal(a).eq(new LatchDecimal(b));
  } catch {
    return false;
  }
}
