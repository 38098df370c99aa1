import { LatchValidationError, type PriceSnapshot } from "@latch/core";
import {
  LITELLM_SKIP_KINDS,
  LITELLM_SKIP_REASONS,
  type LiteLLMSkipCode,
  type LiteLLMSkipKind,
  type LiteLLMSkippedField,
  type PriceResolution,
  serviceTierOf,
  type TierConfig,
} from "@latch/core/adapter";
import type { CliContext } from "../context.js";
import { CommandError, UsageError } from "../exit-codes.js";
import {
  loadPriceSheet,
  mergeSnapshots,
  pricingSourceOf,
  readPriceFile,
  writePriceFile,
} from "../price-file.js";
import { pricesHint, pricesPath, requirePriceFile } from "../prices-flag.js";
import { renderTable } from "../table.js";
import { parseTime } from "../times.js";
import type { PricesImportOptions, PricesShowOptions } from "./prices-command.js";

/** How many LiteLLM fields were skipped for one reason. */
export interface SkipCount {
  code: LiteLLMSkipCode;
  kind: LiteLLMSkipKind;
  reason: string;
  count: number;
}

/** Skips grouped by reason, most frequent first (ties by code), for the import summary. */
export function countSkips(skipped: readonly LiteLLMSkippedField[]): SkipCount[] {
  const counts = new Map<LiteLLMSkipCode, number>();
  for (const s of skipped) counts.set(s.code, (counts.get(s.code) ?? 0) + 1);
  return [...counts]
    .map(([code, count]) => ({
      code,
      kind: LITELLM_SKIP_KINDS[code],
      reason: LITELLM_SKIP_REASONS[code],
      count,
    }))
    .sort((a, b) => b.count - a.count || (a.code < b.code ? -1 : a.code > b.code ? 1 : 0));
}

/**
 * `latch prices import <file>`: merges a LiteLLM cost map or a Latch snapshot file into the
 * price file (written atomically). Re-importing the same sheet changes nothing. For a LiteLLM
 * map it prints how many fields were not imported, per reason (`--json`: `skipCounts`, and
 * every field in `skipped`).
 */
export async function runPricesImport(
  file: string,
  options: PricesImportOptions,
  ctx: CliContext,
): Promise<void> {
  const litellm: { effectiveFrom?: string; currency?: string; includeFree?: boolean } = {};
  if (options.effectiveFrom !== undefined)
    litellm.effectiveFrom = parseTime(options.effectiveFrom, "--effective-from");
  if (options.currency !== undefined) litellm.currency = options.currency.toUpperCase();
  if (options.includeFree === true) litellm.includeFree = true;
  const prices = pricesPath(options, ctx);
  const sheet = await loadPriceSheet(file, "prices import", litellm);
  const stored = await readPriceFile(prices.path, "--prices");
  const merged = mergeSnapshots(stored, sheet.snapshots, prices.path);
  if (merged.added > 0 || merged.closed > 0) await writePriceFile(prices.path, merged.snapshots);
  const result = {
    pricesFile: prices.path,
    source: sheet.kind,
    imported: sheet.snapshots.length,
    added: merged.added,
    unchanged: merged.unchanged,
    closed: merged.closed,
    total: merged.snapshots.length,
    skipCounts: countSkips(sheet.skipped),
    skipped: sheet.skipped,
  };
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  ctx.stdout.write(
    `${file} (${sheet.kind === "litellm" ? "LiteLLM cost map" : "Latch snapshots"}): ` +
      `${result.added} snapshot(s) added, ${result.unchanged} unchanged, ${result.closed} earlier one(s) closed; ` +
      `${result.total} in ${prices.path}\n`,
  );
  if (sheet.skipped.length > 0) {
    const width = String(result.skipCounts[0]?.count ?? 0).length;
    const lines = result.skipCounts.map(
      (c) => `  ${String(c.count).padStart(width)}  ${c.code}: ${c.reason}`,
    );
    ctx.stdout.write(
      `${sheet.skipped.length} LiteLLM field(s) not imported, by reason (--json lists each one):\n${lines.join("\n")}\n`,
    );
  }
}

function priceText(price: PriceSnapshot["prices"][keyof PriceSnapshot["prices"]]): [string, string] {
  if (price === undefined) return ["", ""];
  if ("perMillion" in price) return [price.perMillion, "per million"];
  if ("perUnit" in price) return [price.perUnit, "per unit"];
  return [`as ${price.as}`, ""];
}

function tierText(tier: TierConfig, index: number): string {
  const baseline = typeof tier.baseline === "string" ? tier.baseline : `meter ${tier.baseline.meter}`;
  const lines = [`tier ${index}: ${tier.mode}, per ${tier.scope}, baseline ${baseline}`];
  tier.boundaries.forEach((b, i) => {
    const from = i === 0 ? 0 : (tier.boundaries[i - 1]?.upTo ?? 0);
    const range =
      b.upTo === null ? `> ${from.toLocaleString("en-US")}` : `≤ ${b.upTo.toLocaleString("en-US")}`;
    const prices = Object.entries(b.prices)
      .map(([meter, p]) => `${meter} ${priceText(p).join(" ").trim()}`)
      .join(", ");
    lines.push(`  ${range}: ${prices}`);
  });
  return lines.join("\n");
}

const RULE_TEXT: Record<string, string> = {
  exact: "exact id",
  alias: "declared alias",
  provider_prefix: "provider/region prefix",
  dated_suffix: "dated suffix",
};

/**
 * `latch prices show <model> [--at <time>] [--tier <tier>] [--provider <id>] [--region <r>]`:
 * the snapshot that prices a call of `model` — resolved as `record()` resolves it (model
 * matching, then the service tier) — with the rule that matched, its prices and the matched
 * model's other snapshots. A call that would stay unpriced (no model, no snapshot for the tier,
 * an ambiguous id) is an error that says which, with the candidates or the tiers priced.
 */
export async function runPricesShow(
  model: string,
  options: PricesShowOptions,
  ctx: CliContext,
): Promise<void> {
  const at = options.at === undefined ? new Date().toISOString() : parseTime(options.at, "--at");
  const prices = pricesPath(options, ctx);
  await requirePriceFile(prices);
  const snapshots = await readPriceFile(prices.path, "--prices");
  if (snapshots.length === 0) {
    throw new CommandError(
      `the price file ${pricesHint(prices)} has no snapshots: add prices with \`latch prices import <sheet>\``,
    );
  }
  const source = pricingSourceOf(snapshots, prices.path, "--prices");
  const ref: { billableModel: string; region?: string; tier?: string } = { billableModel: model };
  if (options.region !== undefined) ref.region = options.region;
  if (options.tier !== undefined) ref.tier = options.tier;
  let resolution: PriceResolution;
  try {
    resolution = source.resolvePriceSync({ model: ref, at, providerId: options.provider });
  } catch (error) {
    if (error instanceof LatchValidationError) {
      const flag = {
        model: "<model>",
        "model.tier": "--tier",
        "model.region": "--region",
        providerId: "--provider",
      };
      const issue = error.issues[0];
      const name = flag[issue?.path as keyof typeof flag] ?? issue?.path ?? "";
      throw new UsageError(`${name}: ${issue?.message ?? "invalid"}`);
    }
    throw error;
  }
  if (resolution.status === "unpriced") {
    switch (resolution.reason) {
      case "no_snapshot": {
        const history = snapshots.filter((s) => s.model.billableModel === model);
        const known = history.map(
          (s) => `${s.snapshotId} [${s.effectiveFrom}, ${s.effectiveUntil ?? "open"})`,
        );
        throw new CommandError(
          `no price snapshot for model ${model} at ${at} in ${prices.path}` +
            (known.length > 0 ? `; its snapshots: ${known.join("; ")}` : " (the model has no snapshot)"),
        );
      }
      case "no_snapshot_for_tier":
        throw new CommandError(
          `model ${model} (${matchText(model, resolution.match)}) has no snapshot for service tier ` +
            `${resolution.tier} at ${at} in ${prices.path}: a call in that tier stays unpriced ` +
            `(no_snapshot_for_tier); priced tiers then: ${resolution.pricedTiers.join(", ")}`,
        );
      case "ambiguous_model":
        throw new CommandError(
          `model ${model} is ambiguous at ${at} in ${prices.path}: by ${RULE_TEXT[resolution.rule]} ` +
            `(${resolution.rule}) it matches ${resolution.candidates.length} priced models: ` +
            `${resolution.candidates.join(", ")}; a call stays unpriced (ambiguous_model) until an alias or ` +
            "an exact id decides",
        );
    }
  }
  const { snapshot, match } = resolution;
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify(snapshot)}\n`);
    return;
  }
  const until = snapshot.effectiveUntil ?? "(open)";
  let out = `${snapshot.model.billableModel}${snapshot.model.region ? ` (${snapshot.model.region})` : ""}${
    snapshot.model.tier ? ` [${snapshot.model.tier}]` : ""
  } at ${at}\n`;
  out += `matched: ${matchText(model, match)}\n`;
  out += `service tier: ${resolution.tier}${
    resolution.tierFallback
      ? ` (priced by the ${serviceTierOf(snapshot.model)} snapshot's fallbackTiers)`
      : ""
  }\n`;
  out += `snapshot ${snapshot.snapshotId} · ${snapshot.currency} · from ${snapshot.effectiveFrom} until ${until}\n\n`;
  const rows = Object.entries(snapshot.prices).map(([meter, price]) => [meter, ...priceText(price)]);
  out += renderTable(["meter", "price", "unit"], rows, new Set([1]));
  for (const [i, tier] of (snapshot.tiers ?? []).entries()) out += `\n${tierText(tier, i)}\n`;
  const history = snapshots.filter((s) => s.model.billableModel === match.matchedModel);
  if (history.length > 1) {
    out += `\nother snapshots of ${match.matchedModel}:\n`;
    for (const s of history) {
      if (s.snapshotId === snapshot.snapshotId) continue;
      out += `  ${s.snapshotId} [${s.effectiveFrom}, ${s.effectiveUntil ?? "open"}) · ${serviceTierOf(s.model)}\n`;
    }
  }
  ctx.stdout.write(out);
}

/** `exact id` or `dated suffix (dated_suffix): gpt-4o-2024-08-06 → gpt-4o`. */
function matchText(model: string, match: { rule: string; matchedModel: string }): string {
  if (match.rule === "exact") return `${RULE_TEXT.exact} (exact)`;
  return `${RULE_TEXT[match.rule]} (${match.rule}): ${model} → ${match.matchedModel}`;
}
