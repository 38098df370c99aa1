import { LatchError } from "@latch/core";
import {
  convertBundledGenaiPrices,
  convertLiteLlmCostMap,
  formatCatalogDiff,
  type PriceCatalog,
  printableText as printable,
  readPriceCatalogIfExists,
  updatePriceCatalog,
  writePriceCatalog,
} from "@latch/prices";
import type { CliContext } from "../context.js";
import { CommandError, UsageError } from "../exit-codes.js";
import { parseTime } from "../times.js";
import { withCatalogLock } from "./catalog-lock.js";
import type { PricesUpdateOptions } from "./prices-command.js";
import { readCostMap } from "./read-cost-map.js";

/**
 * How many prices one update may remove (close) before it is refused: a valid but partial map
 * (one model, a truncated download that still parses) would otherwise close every other price
 * and leave those calls unpriced.
 */
const DEFAULT_MAX_REMOVED = 25;

function count(value: string): number {
  if (!/^\d{1,9}$/.test(value)) throw new UsageError("--max-removed: expected a whole number");
  return Number(value);
}

/** How far ahead of this machine's clock `--fetched-at` may be (another machine's clock). */
const MAX_CLOCK_SKEW_MS = 5 * 60_000;

/** Where `latch prices update` keeps the catalog without `--catalog` / `LATCH_PRICE_CATALOG`. */
export const DEFAULT_PRICE_CATALOG = "./latch-prices.catalog.json";

/** `--from` value that reads the price data bundled in the installed `@pydantic/genai-prices`. */
export const GENAI_PRICES_FROM = "genai-prices";

/**
 * `latch prices update --from <file|url|genai-prices>`: converts a LiteLLM cost map (or the
 * genai-prices data bundled with @latch/prices), prints what changes against the catalog
 * (prices changed, added, removed), then writes the catalog atomically. Idempotent: the same
 * map again changes nothing and writes nothing.
 */
export async function runPricesUpdate(
  options: PricesUpdateOptions & { from: string },
  ctx: CliContext,
): Promise<void> {
  const from = options.from;
  const catalogPath = options.catalog ?? ctx.env.LATCH_PRICE_CATALOG ?? DEFAULT_PRICE_CATALOG;
  const fetchedAt =
    options.fetchedAt === undefined ? new Date().toISOString() : parseTime(options.fetchedAt, "--fetched-at");
  // A fetch time in the future would date the new prices ahead, and the catalog's "last change"
  // with them: every honest update until then would be refused as older. A clock skew of a few
  // minutes is tolerated.
  if (Date.parse(fetchedAt) > Date.now() + MAX_CLOCK_SKEW_MS) {
    throw new UsageError(`--fetched-at: ${fetchedAt} is in the future; a map cannot have been fetched then`);
  }
  const effectiveFrom =
    options.effectiveFrom === undefined ? undefined : parseTime(options.effectiveFrom, "--effective-from");
  const maxRemoved = options.maxRemoved === undefined ? DEFAULT_MAX_REMOVED : count(options.maxRemoved);
  const bundled = from === GENAI_PRICES_FROM;
  if (bundled && (options.commit !== undefined || options.sourceUrl !== undefined)) {
    throw new UsageError(
      "prices update: --commit and --source-url describe a downloaded map; --from genai-prices records the installed package and its version",
    );
  }
  const map = bundled ? undefined : await readCostMap(from, options.sourceUrl, ctx);

  try {
    const convert = async (includeFree: boolean) => {
      if (map === undefined) {
        // The prices in effect at --effective-from (default: now), every snapshot dated from then.
        return await convertBundledGenaiPrices({ fetchedAt, asOf: effectiveFrom ?? fetchedAt, includeFree });
      }
      const source: { url: string; fetchedAt: string; commit?: string; etag?: string } = {
        url: map.url,
        fetchedAt,
      };
      if (options.commit !== undefined) source.commit = options.commit;
      if (map.etag !== undefined) source.etag = map.etag;
      return convertLiteLlmCostMap(map.text, {
        source,
        ...(effectiveFrom === undefined ? {} : { effectiveFrom }),
        includeFree,
      });
    };
    const apply = async () => {
      const current = await readPriceCatalogIfExists(catalogPath);
      // --include-free is sticky: once a catalog took all-zero prices, an update without the flag
      // must not remove them (they would read as removed from the map).
      const kept = options.includeFree !== true && current?.sources.at(-1)?.includeFree === true;
      if (kept) ctx.stdout.write("--include-free: kept from the catalog's last update\n");
      const converted: { catalog: PriceCatalog; skipped: ReadonlyArray<{ code: string }> } = await convert(
        options.includeFree === true || kept,
      );
      const update = updatePriceCatalog(current, converted.catalog);
      ctx.stdout.write(`${formatCatalogDiff(update.diff)}\n`);
      if (converted.skipped.length > 0) ctx.stdout.write(`${skipSummary(converted.skipped)}\n`);
      if (!update.changed) {
        ctx.stdout.write(`${catalogPath}: unchanged, nothing written\n`);
      } else if (options.dryRun === true) {
        ctx.stdout.write(`${catalogPath}: dry run, nothing written\n`);
      } else if (update.diff.removed.length > maxRemoved) {
        throw new CommandError(
          `prices update: ${update.diff.removed.length} prices would be removed, more than --max-removed ${maxRemoved}; nothing written. Check that the map is complete, or pass --max-removed ${update.diff.removed.length}`,
        );
      } else {
        await writePriceCatalog(catalogPath, update.catalog);
        ctx.stdout.write(
          `${catalogPath}: written (${update.catalog.entries.length} snapshot(s) from ${update.catalog.sources.length} source(s))\n`,
        );
      }
    };
    // A dry run writes nothing, so it needs no lock (and never waits on one).
    await (options.dryRun === true ? apply() : withCatalogLock(catalogPath, apply));
  } catch (error) {
    // Messages can quote model ids from a third-party map: no control character reaches the terminal.
    if (LatchError.isInstance(error)) throw new CommandError(`prices update: ${printable(error.message)}`);
    throw error;
  }
}

function skipSummary(skipped: ReadonlyArray<{ code: string }>): string {
  const counts = new Map<string, number>();
  for (const s of skipped) counts.set(s.code, (counts.get(s.code) ?? 0) + 1);
  const parts = [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([code, n]) => `${code} ${n}`);
  return `not imported: ${skipped.length} (${parts.join(", ")})`;
}
