import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { InMemoryPricingSource } from "@latch/core";
import { type PriceCatalogSource, pricingSourceOf } from "../catalog.js";
import {
  convertGenaiPrices,
  GENAI_PRICES_PROVIDERS,
  type GenaiConvertOptions,
  type GenaiConvertResult,
  type GenaiProvider,
} from "./convert.js";

export const GENAI_PRICES_PACKAGE = "@pydantic/genai-prices";
export const GENAI_PRICES_SOURCE_NAME = "genai-prices (Pydantic)";
const FALLBACK_COPYRIGHT = "Copyright (c) Pydantic Services Inc. 2025 to present";

/** Options of {@link convertBundledGenaiPrices} and {@link bundledPriceCatalog}. */
export type BundledOptions = Omit<GenaiConvertOptions, "source"> & {
  /** When the data was read, ISO 8601 UTC. Default: now. */
  fetchedAt?: string;
};

/**
 * The attribution of the installed `@pydantic/genai-prices`: its name and version (read from its
 * package.json), npm URL, licence and the copyright line of its LICENSE. The package does not
 * publish the date or commit of its data, so only the version pins it.
 */
export function genaiPricesSource(fetchedAt = new Date().toISOString()): PriceCatalogSource {
  const require = createRequire(import.meta.url);
  const root = dirname(dirname(require.resolve(GENAI_PRICES_PACKAGE))); // …/dist/index.cjs → package root
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    version?: unknown;
    license?: unknown;
  };
  const version = typeof pkg.version === "string" ? pkg.version : "unknown";
  let copyright = FALLBACK_COPYRIGHT;
  try {
    const line = readFileSync(join(root, "LICENSE"), "utf8")
      .split("\n")
      .find((l) => l.trim().startsWith("Copyright"));
    if (line !== undefined) copyright = line.trim();
  } catch {
    // a package without its LICENSE file: the known copyright line
  }
  return {
    name: GENAI_PRICES_SOURCE_NAME,
    url: `https://www.npmjs.com/package/${GENAI_PRICES_PACKAGE}/v/${version}`,
    package: `${GENAI_PRICES_PACKAGE}@${version}`,
    fetchedAt,
    licence: typeof pkg.license === "string" ? pkg.license : "MIT",
    copyright,
  };
}

/**
 * Converts the price data bundled in the installed `@pydantic/genai-prices` (read at run time,
 * never committed here) with {@link convertGenaiPrices}: the catalog, with its attribution, and
 * everything skipped.
 *
 * @example
 * const { catalog, skipped } = await convertBundledGenaiPrices();
 * catalog.sources[0]; // { name: "genai-prices (Pydantic)", package: "@pydantic/genai-prices@0.1.8", licence: "MIT", … }
 */
export async function convertBundledGenaiPrices(options: BundledOptions = {}): Promise<GenaiConvertResult> {
  // Loaded on first use: the package's data (~0.8 MB of JavaScript) costs nothing to an
  // application that only reads a catalog file.
  const { findProvider } = await import("@pydantic/genai-prices");
  const { fetchedAt, ...rest } = options;
  const wanted = rest.providers ?? GENAI_PRICES_PROVIDERS;
  const providers: GenaiProvider[] = [];
  for (const providerId of wanted) {
    const provider = findProvider({ providerId });
    if (provider !== undefined && provider.id === providerId) providers.push(provider as GenaiProvider);
  }
  const source = genaiPricesSource(fetchedAt);
  if (rest.includeFree === true) source.includeFree = true;
  return convertGenaiPrices(providers, { ...rest, providers: wanted, source });
}

/**
 * Prices out of the box: the bundled genai-prices data as `createLatch({ pricing })`, in one
 * option. Real ids resolve by Latch's model matching (`gpt-4o-2024-08-06` is an alias of
 * `gpt-4o`; `claude-sonnet-4-20250514` reaches `claude-sonnet-4` by its date suffix).
 *
 * Call it once at startup and share the source: every call converts the whole list anew
 * (~0.17 s of CPU; the first ~0.9 s, loading the package). The source is yours to change
 * (`.add(snapshot)`), so it is not cached here.
 *
 * @example
 * const latch = createLatch({ observations, rated, pricing: await bundledPriceCatalog() });
 */
export async function bundledPriceCatalog(options: BundledOptions = {}): Promise<InMemoryPricingSource> {
  return pricingSourceOf((await convertBundledGenaiPrices(options)).catalog);
}
