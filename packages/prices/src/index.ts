/**
 * @latch/prices: a versioned Latch price catalog built from LiteLLM's model cost map (MIT).
 * The package ships the converter and the loader, not the data: `latch prices update` (or
 * {@link convertLiteLlmCostMap} + {@link updatePriceCatalog} + {@link writePriceCatalog}) builds
 * the catalog from a map you fetch; {@link priceCatalog} gives it to `createLatch()`.
 */
export {
  type CatalogDiff,
  type CatalogDiffItem,
  type CatalogUpdate,
  LITELLM_MAP_URL,
  PRICE_CATALOG_FORMAT,
  type PriceCatalog,
  type PriceCatalogEntry,
  type PriceCatalogSource,
  parsePriceCatalog,
  pricingSourceOf,
  updatePriceCatalog,
} from "./catalog.js";
export {
  CATALOG_MODES,
  type CatalogSkip,
  type ConvertOptions,
  type ConvertResult,
  convertLiteLlmCostMap,
  type LiteLlmSourceInput,
} from "./convert.js";
export { formatCatalogDiff } from "./diff-summary.js";
export { loadPriceCatalog, priceCatalog, readPriceCatalogIfExists, writePriceCatalog } from "./file.js";
export {
  type BundledOptions,
  bundledPriceCatalog,
  convertBundledGenaiPrices,
  GENAI_PRICES_PACKAGE,
  genaiPricesSource,
} from "./genai-prices/bundled.js";
export {
  convertGenaiPrices,
  GENAI_PRICES_BARE_PROVIDERS,
  GENAI_PRICES_PROVIDERS,
  GENAI_SKIP_REASONS,
  type GenaiConditionalPrice,
  type GenaiConvertOptions,
  type GenaiConvertResult,
  type GenaiMatch,
  type GenaiModel,
  type GenaiModelPrice,
  type GenaiPricesSkip,
  type GenaiProvider,
  type GenaiSkipCode,
  type GenaiTieredPrice,
  genaiPriceText,
} from "./genai-prices/convert.js";
export { printableText } from "./printable.js";
