import type { MeterSet } from "../schemas/meters.js";

/**
 * Usage in a provider payload that the provider bills at ANOTHER model's rates than the call's
 * own (an Anthropic advisor sub-inference, an attempt a server-side fallback declined after it
 * produced output, the image model behind OpenAI's image generation tool). One observation prices one model, so these meters are not in
 * {@link NormalizedResponse.meters}: record each as its own observation with
 * `model.billableModel: model` (e.g. eventId step `advisor1`).
 */
export interface SeparatelyBilledUsage {
  /** Where it sits in the payload the normalizer was given, e.g. `usage.iterations.1`. */
  readonly path: string;
  /**
   * `advisor`: an Anthropic `advisor_message` iteration; `declined_attempt`: a declined hop's
   * `message` iteration; `image_generation`: OpenAI Responses `tool_usage.image_gen` (the image
   * model's tokens) or, without it, one completed `image_generation_call` item (`image_count: 1`).
   */
  readonly kind: "advisor" | "declined_attempt" | "image_generation";
  /** The model whose rates bill it, as the provider names it. */
  readonly model: string;
  readonly meters: MeterSet;
}

/**
 * What a whole provider response says about billing: the call's disjoint meters (including
 * what sits outside `usage`, such as OpenAI web search calls), the service tier the provider
 * reports (canonical name, see `canonicalServiceTier`), and usage billed at other models' rates.
 */
export interface NormalizedResponse {
  readonly meters: MeterSet;
  /** The tier the provider says the call ran in (`default` → `standard`); absent when it says none. */
  readonly serviceTier?: string;
  /** Present and non-empty only when the payload carries usage billed at another model's rates. */
  readonly separatelyBilled?: readonly SeparatelyBilledUsage[];
}
