import type { PriceSnapshot, TierConfig } from "@latch/core";
import type { CliContext } from "../context.js";
import { CommandError } from "../exit-codes.js";
import {
  loadPriceSheet,
  mergeSnapshots,
  pricingSourceOf,
  readPriceFile,
  writePriceFile,
} from "../price-file.js";
import { renderTable } from "../table.js";
import { parseTime } from "../times.js";

export interface PricesImportOptions {
  pricesFile: string;
  effectiveFrom?: string;
  currency?: string;
  json: boolean;
}

/**
 * `latch prices import <file>`: merges a LiteLLM cost map or a Latch snapshot file into the
 * price file (written atomically). Re-importing the same sheet changes nothing.
 */
export async function runPricesImport(
  file: string,
  options: PricesImportOptions,
  ctx: CliContext,
): Promise<void> {
  const litellm: { effectiveFrom?: string; currency?: string } = {};
  if (options.effectiveFrom !== undefined)
    litellm.effectiveFrom = parseTime(options.effectiveFrom, "--effective-from");
  if (options.currency !== undefined) litellm.currency = options.currency.toUpperCase();
  const sheet = await loadPriceSheet(file, "prices import", litellm);
  const stored = await readPriceFile(options.pricesFile, "--prices-file");
  const merged = mergeSnapshots(stored, sheet.snapshots, options.pricesFile);
  if (merged.added > 0 || merged.closed > 0) await writePriceFile(options.pricesFile, merged.snapshots);
  const result = {
    pricesFile: options.pricesFile,
    source: sheet.kind,
    imported: sheet.snapshots.length,
    added: merged.added,
    unchanged: merged.unchanged,
    closed: merged.closed,
    total: merged.snapshots.length,
    skipped: sheet.skipped,
  };
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }
  ctx.stdout.write(
    `${file} (${sheet.kind === "litellm" ? "LiteLLM cost map" : "Latch snapshots"}): ` +
      `${result.added} snapshot(s) added, ${result.unchanged} unchanged, ${result.closed} earlier one(s) closed; ` +
      `${result.total} in ${options.pricesFile}\n`,
  );
  if (sheet.skipped.length > 0) {
    ctx.stderr.write(
      `${sheet.skipped.length} LiteLLM field(s) not imported (use --json to list them with the reason)\n`,
    );
  }
}

export interface PricesShowOptions {
  pricesFile: string;
  at?: string;
  region?: string;
  tier?: string;
  json: boolean;
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

/** `latch prices show <model> [--at <time>]`: the snapshot in effect, its prices and the model's history. */
export async function runPricesShow(
  model: string,
  options: PricesShowOptions,
  ctx: CliContext,
): Promise<void> {
  const at = options.at === undefined ? new Date().toISOString() : parseTime(options.at, "--at");
  const snapshots = await readPriceFile(options.pricesFile, "--prices-file");
  const source = pricingSourceOf(snapshots, options.pricesFile, "--prices-file");
  const ref: { billableModel: string; region?: string; tier?: string } = { billableModel: model };
  if (options.region !== undefined) ref.region = options.region;
  if (options.tier !== undefined) ref.tier = options.tier;
  const snapshot = source.resolveSync(ref, at);
  const history = snapshots.filter((s) => s.model.billableModel === model);
  if (snapshot === undefined) {
    const known = history.map((s) => `${s.snapshotId} [${s.effectiveFrom}, ${s.effectiveUntil ?? "open"})`);
    throw new CommandError(
      `no price snapshot for model ${model} at ${at} in ${options.pricesFile}` +
        (known.length > 0 ? `; its snapshots: ${known.join("; ")}` : " (the model has no snapshot)"),
    );
  }
  if (options.json) {
    ctx.stdout.write(`${JSON.stringify(snapshot)}\n`);
    return;
  }
  const until = snapshot.effectiveUntil ?? "(open)";
  let out = `${snapshot.model.billableModel}${snapshot.model.region ? ` (${snapshot.model.region})` : ""}${
    snapshot.model.tier ? ` [${snapshot.model.tier}]` : ""
  } at ${at}\n`;
  out += `snapshot ${snapshot.snapshotId} · ${snapshot.currency} · from ${snapshot.effectiveFrom} until ${until}\n\n`;
  const rows = Object.entries(snapshot.prices).map(([meter, price]) => [meter, ...priceText(price)]);
  out += renderTable(["meter", "price", "unit"], rows, new Set([1]));
  for (const [i, tier] of (snapshot.tiers ?? []).entries()) out += `\n${tierText(tier, i)}\n`;
  if (history.length > 1) {
    out += `\nother snapshots of ${model}:\n`;
    for (const s of history) {
      if (s.snapshotId === snapshot.snapshotId) continue;
      out += `  ${s.snapshotId} [${s.effectiveFrom}, ${s.effectiveUntil ?? "open"})\n`;
    }
  }
  ctx.stdout.write(out);
}
