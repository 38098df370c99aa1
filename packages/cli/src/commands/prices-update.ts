import { readFile } from "node:fs/promises";
import { LatchError } from "@latch/core";
import {
  type CatalogSkip,
  convertLiteLlmCostMap,
  formatCatalogDiff,
  LITELLM_MAP_URL,
  readPriceCatalogIfExists,
  updatePriceCatalog,
  writePriceCatalog,
} from "@latch/prices";
import type { CliContext } from "../context.js";
import { CommandError } from "../exit-codes.js";
import { parseTime } from "../times.js";
import type { PricesUpdateOptions } from "./prices-command.js";

/** Where `latch prices update` keeps the catalog without `--catalog` / `LATCH_PRICE_CATALOG`. */
export const DEFAULT_PRICE_CATALOG = "./latch-prices.catalog.json";

/**
 * `latch prices update --from <file|url>`: converts a LiteLLM cost map, prints what changes
 * against the catalog (prices changed, added, removed), then writes the catalog atomically.
 * Idempotent: the same map again changes nothing and writes nothing.
 */
export async function runPricesUpdate(
  options: PricesUpdateOptions & { from: string },
  ctx: CliContext,
): Promise<void> {
  const from = options.from;
  const catalogPath = options.catalog ?? ctx.env.LATCH_PRICE_CATALOG ?? DEFAULT_PRICE_CATALOG;
  const fetchedAt =
    options.fetchedAt === undefined ? new Date().toISOString() : parseTime(options.fetchedAt, "--fetched-at");
  const effectiveFrom =
    options.effectiveFrom === undefined ? undefined : parseTime(options.effectiveFrom, "--effective-from");
  const { text, url, etag } = await readMap(from, options.sourceUrl, ctx);

  try {
    const source: { url: string; fetchedAt: string; commit?: string; etag?: string } = { url, fetchedAt };
    if (options.commit !== undefined) source.commit = options.commit;
    if (etag !== undefined) source.etag = etag;
    const converted = convertLiteLlmCostMap(text, {
      source,
      ...(effectiveFrom === undefined ? {} : { effectiveFrom }),
      includeFree: options.includeFree === true,
    });
    const current = await readPriceCatalogIfExists(catalogPath);
    const update = updatePriceCatalog(current, converted.catalog);
    ctx.stdout.write(`${formatCatalogDiff(update.diff)}\n`);
    if (converted.skipped.length > 0) ctx.stdout.write(`${skipSummary(converted.skipped)}\n`);
    if (!update.changed) {
      ctx.stdout.write(`${catalogPath}: unchanged, nothing written\n`);
    } else if (options.dryRun === true) {
      ctx.stdout.write(`${catalogPath}: dry run, nothing written\n`);
    } else {
      await writePriceCatalog(catalogPath, update.catalog);
      ctx.stdout.write(
        `${catalogPath}: written (${update.catalog.entries.length} snapshot(s) from ${update.catalog.sources.length} source(s))\n`,
      );
    }
  } catch (error) {
    if (LatchError.isInstance(error)) throw new CommandError(`prices update: ${error.message}`);
    throw error;
  }
}

async function readMap(
  from: string,
  sourceUrl: string | undefined,
  ctx: CliContext,
): Promise<{ text: string; url: string; etag?: string }> {
  if (/^https?:\/\//i.test(from)) {
    let response: Response;
    try {
      response = await fetch(from, { signal: ctx.signal });
    } catch (error) {
      throw new CommandError("prices update: --from: the URL could not be fetched", { cause: error });
    }
    if (!response.ok)
      throw new CommandError(`prices update: --from: the server answered HTTP ${response.status}`);
    const etag = response.headers.get("etag") ?? undefined;
    const out: { text: string; url: string; etag?: string } = {
      text: await response.text(),
      url: sourceUrl ?? from,
    };
    if (etag !== undefined) out.etag = etag;
    return out;
  }
  try {
    return { text: await readFile(from, "utf8"), url: sourceUrl ?? LITELLM_MAP_URL };
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new CommandError(`prices update: --from: cannot read the file${code ? ` (${code})` : ""}`, {
      cause: error,
    });
  }
}

function skipSummary(skipped: readonly CatalogSkip[]): string {
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.code, (counts.get(s.code) ?? 0) + 1);
  const parts = [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([code, n]) => `${code} ${n}`);
  return `not imported: ${skipped.length} (${parts.join(", ")})`;
}
