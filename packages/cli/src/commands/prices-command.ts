import { defineCommand, flag, type OptionValues, text } from "../command.js";
import { UsageError } from "../exit-codes.js";
import { PRICES_OPTIONS } from "../prices-flag.js";

export const PRICES_IMPORT_OPTIONS = [
  ...PRICES_OPTIONS,
  text("--effective-from <time>", "LiteLLM: when these prices take effect (default 1970-01-01T00:00:00Z)"),
  text("--currency <code>", "LiteLLM: ISO 4217 currency of the prices (default USD)"),
  flag(
    "--include-free",
    "LiteLLM: also import entries whose every price is 0 (skipped by default as placeholders)",
  ),
  flag("--json", "print the result (and every LiteLLM field not imported) as JSON"),
] as const;
export type PricesImportOptions = OptionValues<typeof PRICES_IMPORT_OPTIONS>;

export const PRICES_SHOW_OPTIONS = [
  ...PRICES_OPTIONS,
  text("--at <time>", "when (ISO 8601 or YYYY-MM-DD; default now)"),
  text("--region <region>", "the model's region, for regional prices"),
  text("--tier <tier>", "the call's service tier: standard (default), priority, flex, scale, batch"),
  text(
    "--provider <id>",
    "the provider that served the call (e.g. openrouter), for provider-prefixed prices",
  ),
  flag("--json", "print the snapshot as JSON"),
] as const;
export type PricesShowOptions = OptionValues<typeof PRICES_SHOW_OPTIONS>;

export const PRICES_UPDATE_OPTIONS = [
  text(
    "--from <file|url>",
    "the LiteLLM cost map: a file, or an http(s) URL to fetch (its ETag is recorded); or genai-prices: the price data bundled in the installed @pydantic/genai-prices (no download)",
  ),
  text(
    "--catalog <path>",
    "the price catalog to update (env LATCH_PRICE_CATALOG, default ./latch-prices.catalog.json)",
  ),
  text("--commit <sha>", "the LiteLLM commit the map is from, recorded as attribution"),
  text(
    "--source-url <url>",
    "where the map came from, recorded as attribution (default: the --from URL, else LiteLLM's main branch)",
  ),
  text("--fetched-at <time>", "when the map was fetched (default now)"),
  text("--effective-from <time>", "when the new prices take effect (default: --fetched-at)"),
  flag("--include-free", "also import entries whose every price is 0 (skipped by default as placeholders)"),
  flag("--dry-run", "print what would change, write nothing"),
  text(
    "--max-removed <n>",
    "refuse to write when more prices than this would be removed (a truncated or partial map; default 25)",
  ),
] as const;
export type PricesUpdateOptions = OptionValues<typeof PRICES_UPDATE_OPTIONS>;

/** `latch prices import|show|update`. */
export const pricesCommand = defineCommand({
  name: "prices",
  description: "manage the price file (dated Latch price snapshots) that `latch rate` reads",
  commands: [
    defineCommand({
      name: "import",
      description: "merge a LiteLLM cost map or a Latch snapshot file into the price file",
      arguments: [
        {
          name: "<file>",
          description: "model_prices_and_context_window.json (LiteLLM) or a Latch snapshot JSON file",
        },
      ],
      options: PRICES_IMPORT_OPTIONS,
      action: async ([file], options, ctx) =>
        (await import("./prices.js")).runPricesImport(file, options, ctx),
    }),
    defineCommand({
      name: "update",
      description:
        "update a versioned price catalog (@latch/prices) from a LiteLLM cost map or the bundled genai-prices data: prints prices changed, added and removed, then writes atomically; the same map again writes nothing",
      options: PRICES_UPDATE_OPTIONS,
      action: async (_args, options, ctx) => {
        if (options.from === undefined) throw new UsageError("prices update: --from <file|url> is required");
        return (await import("./prices-update.js")).runPricesUpdate({ ...options, from: options.from }, ctx);
      },
    }),
    defineCommand({
      name: "show",
      description:
        "show the snapshot that prices a call of a model (model matching and service tier as record() applies them), its prices and tiers",
      arguments: [
        { name: "<model>", description: "billable model as a call names it, e.g. gpt-4o-2024-08-06" },
      ],
      options: PRICES_SHOW_OPTIONS,
      action: async ([model], options, ctx) =>
        (await import("./prices.js")).runPricesShow(model, options, ctx),
    }),
  ],
});
