/**
 * Model matching: which priced model a call's `model.billableModel` is billed as, when the
 * price sheet does not name it exactly. One deterministic resolution, four rules, tried in
 * order; the first rule that finds a model decides:
 *
 * 1. `exact` — a snapshot's `billableModel` is the call's id. Always wins, even over a
 *    shorter id: `gpt-4o-2024-05-13` has its own price in LiteLLM's map.
 * 2. `alias` — a snapshot lists the call's id in `aliases`.
 * 3. `provider_prefix` — the call's id under its provider's name, then the call's id with
 *    qualifiers removed one at a time, in this order (each removal keeps the earlier ones):
 *    - leading path segments, left to right, while the segment is one that does not change
 *      the price ({@link REMOVABLE_SEGMENTS}: a router that bills the upstream price, a model
 *      maker's own namespace, or `bedrock`, whose own prices are listed unprefixed):
 *      `openrouter/openai/gpt-4o` → `openai/gpt-4o` → `gpt-4o`. A reseller with prices of its
 *      own (`azure/`, `vertex_ai/`, `groq/`, …) is never removed: `azure/gpt-4o-mini` is
 *      priced at Azure's price or left `no_snapshot`, never at OpenAI's;
 *    - a cross-region prefix ({@link REGION_PREFIXES}): `us.anthropic.claude-…` → `anthropic.claude-…`;
 *    - a Bedrock vendor prefix ({@link VENDOR_PREFIXES}): `anthropic.claude-…` → `claude-…`;
 *    - a Bedrock version suffix `-v2:0`, or Vertex's `@20241022` spelled `-20241022`.
 *
 *    For each form, `<providerId>/<form>` is looked up before `<form>` itself, so an
 *    OpenRouter call (`provider.providerId: "openrouter"`) of `openai/gpt-4o` finds
 *    `openrouter/openai/gpt-4o` before `gpt-4o`. The provider id is used as spelled: it must
 *    match the sheet's prefix (LiteLLM's are `openrouter`, `azure`, `bedrock`, `vertex_ai`, …).
 *    Rule 1 still comes first: an Azure call of `gpt-4o` is priced at `gpt-4o` when the sheet
 *    names it; bill it as `azure/gpt-4o` to get Azure's price.
 * 4. `dated_suffix` — each form of rule 3 (the call's id first) without a trailing date
 *    (`-2024-08-06`, `-20241022`) or `-latest`: `gpt-4o-2024-08-06` → `gpt-4o`,
 *    `anthropic/claude-3-5-sonnet-20241022` → `claude-3-5-sonnet`. Four-digit suffixes
 *    (`gpt-4-0613`) are not read as dates: they are as often sizes (`-8192`); declare an alias.
 *
 * At rules 3 and 4 each looked-up id may be a snapshot's `billableModel` or one of its
 * `aliases`. Whenever one lookup (or the alias rule) finds more than one distinct model, the
 * call is ambiguous: it is left unpriced with reason `ambiguous_model` and the candidates —
 * never a guess. Matching only removes qualifiers from the call's id (and adds only the
 * call's own provider): a call is never priced at another provider's or region's price.
 *
 * Which models "the sheet prices" is decided by the {@link ModelCatalog}: the pricing source
 * answers with the snapshots in effect at the call's time (and region). The call's service
 * tier plays no part here: it is applied to the matched model afterwards, so a tier with no
 * snapshot never falls through to another model.
 */

/** The rule that matched a call's model to a priced one. */
export type ModelMatchRule = "exact" | "alias" | "provider_prefix" | "dated_suffix";

/** The rules in the order they are tried. */
export const MODEL_MATCH_RULES: readonly ModelMatchRule[] = [
  "exact",
  "alias",
  "provider_prefix",
  "dated_suffix",
];

/**
 * Leading path segments that `provider_prefix` removes: removing them keeps the price. A
 * router that bills the upstream provider's price (`openrouter`), the model makers'
 * namespaces that routers put before a model (`openai/gpt-4o`), and `bedrock` (LiteLLM lists
 * Bedrock's own prices without the prefix: `anthropic.claude-…`, `us.anthropic.claude-…`).
 * Any other segment is a provider with prices of its own and stops the removal.
 */
export const REMOVABLE_SEGMENTS: ReadonlySet<string> = new Set([
  "openrouter",
  "bedrock",
  "openai",
  "anthropic",
  "google",
  "meta-llama",
  "mistralai",
  "mistral",
  "deepseek",
  "x-ai",
  "xai",
  "qwen",
  "cohere",
  "amazon",
  "ai21",
  "microsoft",
  "nvidia",
  "moonshotai",
  "z-ai",
]);

/** Bedrock cross-region inference profile prefixes removed by `provider_prefix`. */
export const REGION_PREFIXES: readonly string[] = ["us.", "us-gov.", "eu.", "apac.", "jp.", "au.", "global."];

/** Bedrock model-provider prefixes (`<vendor>.<model>`) removed by `provider_prefix`. */
export const VENDOR_PREFIXES: readonly string[] = [
  "anthropic.",
  "amazon.",
  "meta.",
  "cohere.",
  "mistral.",
  "ai21.",
  "deepseek.",
  "openai.",
  "qwen.",
  "writer.",
];

/** What the matcher needs to know about the price sheet, at the call's time and region. */
export interface ModelCatalog {
  /** Whether a snapshot with this `billableModel` applies. */
  hasModel(id: string): boolean;
  /** The distinct `billableModel`s of applicable snapshots that list `alias` in `aliases`. */
  modelsAliasedAs(alias: string): readonly string[];
}

export type ModelMatchResult =
  | {
      kind: "matched";
      rule: ModelMatchRule;
      /** The snapshot's billableModel. */
      matchedModel: string;
      /** The id that was looked up (a form of the call's id, or the call's id itself). */
      via: string;
    }
  | { kind: "ambiguous"; rule: ModelMatchRule; via: string; candidates: readonly string[] }
  | { kind: "none" };

const NONE: ModelMatchResult = { kind: "none" };
const BEDROCK_VERSION = /-v\d+:\d+$/;
const VERTEX_DATE = /@(\d{8})$/;

/**
 * The forms of a call's id that rule 3 looks up, in order: the id itself first, then one more
 * qualifier removed at each step (removable path segments, region, vendor, version suffix).
 */
export function qualifierForms(id: string): string[] {
  const forms = [id];
  let current = id;
  for (
    let slash = current.indexOf("/");
    slash > 0 && slash < current.length - 1 && REMOVABLE_SEGMENTS.has(current.slice(0, slash));
    slash = current.indexOf("/")
  ) {
    current = current.slice(slash + 1);
    forms.push(current);
  }
  const region = prefixOf(current, REGION_PREFIXES);
  if (region !== undefined) {
    current = current.slice(region.length);
    forms.push(current);
  }
  const vendor = prefixOf(current, VENDOR_PREFIXES);
  if (vendor !== undefined) {
    current = current.slice(vendor.length);
    forms.push(current);
  }
  const bedrock = BEDROCK_VERSION.exec(current);
  if (bedrock !== null && bedrock.index > 0) forms.push(current.slice(0, bedrock.index));
  else {
    const vertex = VERTEX_DATE.exec(current);
    if (vertex !== null && vertex.index > 0 && isDate(vertex[1] as string)) {
      forms.push(`${current.slice(0, vertex.index)}-${vertex[1]}`);
    }
  }
  return forms;
}

/** The prefix of `prefixes` that `id` starts with (and does not consist of), if any. */
function prefixOf(id: string, prefixes: readonly string[]): string | undefined {
  for (const p of prefixes) if (id.length > p.length && id.startsWith(p)) return p;
  return undefined;
}

function isDate(yyyymmdd: string): boolean {
  const year = Number(yyyymmdd.slice(0, 4));
  const month = Number(yyyymmdd.slice(4, 6));
  const day = Number(yyyymmdd.slice(6, 8));
  return year >= 2000 && year <= 2099 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

const DASHED_DATE = /-(\d{4})-(\d{2})-(\d{2})$/;
const COMPACT_DATE = /-(\d{8})$/;

/** `id` without a trailing date (`-2024-08-06`, `-20241022`) or `-latest`, or undefined when it has none. */
export function withoutDateSuffix(id: string): string | undefined {
  const dashed = DASHED_DATE.exec(id);
  if (dashed !== null && dashed.index > 0 && isDate(`${dashed[1]}${dashed[2]}${dashed[3]}`)) {
    return id.slice(0, dashed.index);
  }
  const compact = COMPACT_DATE.exec(id);
  if (compact !== null && compact.index > 0 && isDate(compact[1] as string))
    return id.slice(0, compact.index);
  if (id.endsWith("-latest") && id.length > "-latest".length) return id.slice(0, -"-latest".length);
  return undefined;
}

/** The distinct models one looked-up id names: itself if priced, and every model aliased as it. */
function candidatesFor(id: string, catalog: ModelCatalog): string[] {
  const aliased = catalog.modelsAliasedAs(id);
  if (!catalog.hasModel(id)) return aliased.length <= 1 ? [...aliased] : [...aliased].sort();
  if (aliased.length === 0) return [id];
  return [...new Set([id, ...aliased])].sort();
}

function decide(
  rule: ModelMatchRule,
  via: string,
  candidates: readonly string[],
): ModelMatchResult | undefined {
  if (candidates.length === 0) return undefined;
  if (candidates.length === 1) return { kind: "matched", rule, matchedModel: candidates[0] as string, via };
  return { kind: "ambiguous", rule, via, candidates };
}

/** Looks up `<providerId>/<form>`, then `<form>` (unless told to skip it). */
function lookUpForm(
  rule: ModelMatchRule,
  form: string,
  providerId: string | undefined,
  catalog: ModelCatalog,
  bare: boolean,
): ModelMatchResult | undefined {
  if (providerId !== undefined && !form.startsWith(`${providerId}/`)) {
    const qualified = `${providerId}/${form}`;
    const found = decide(rule, qualified, candidatesFor(qualified, catalog));
    if (found !== undefined) return found;
  }
  return bare ? decide(rule, form, candidatesFor(form, catalog)) : undefined;
}

/**
 * Matches a call's model id (and its provider, when known) to a priced model, by the rules
 * described at the top of this module.
 *
 * @example
 * matchModel("gpt-4o-2024-08-06", "openai", catalog);
 * // { kind: "matched", rule: "dated_suffix", matchedModel: "gpt-4o", via: "gpt-4o" }
 */
export function matchModel(
  billableModel: string,
  providerId: string | undefined,
  catalog: ModelCatalog,
): ModelMatchResult {
  if (catalog.hasModel(billableModel)) {
    return { kind: "matched", rule: "exact", matchedModel: billableModel, via: billableModel };
  }
  const aliased = decide("alias", billableModel, [...catalog.modelsAliasedAs(billableModel)].sort());
  if (aliased !== undefined) return aliased;

  const forms = qualifierForms(billableModel);
  for (const [i, form] of forms.entries()) {
    // The call's id itself was looked up by rules 1 and 2: only its provider-qualified form is new.
    const found = lookUpForm("provider_prefix", form, providerId, catalog, i > 0);
    if (found !== undefined) return found;
  }
  for (const form of forms) {
    const undated = withoutDateSuffix(form);
    if (undated === undefined) continue;
    const found = lookUpForm("dated_suffix", undated, providerId, catalog, true);
    if (found !== undefined) return found;
  }
  return NONE;
}
