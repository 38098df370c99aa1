import {
  LITELLM_SKIP_KINDS,
  LITELLM_SKIP_REASONS,
  type LiteLLMSkipCode,
  type LiteLLMSkipKind,
  type LiteLLMSkippedField,
  type PriceSnapshot,
  type TierConfig,
} from "@latch/core";
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
  includeFree?: boolean;
  json: boolean;
}

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
      `${result.total} in ${options.pricesFile}\n`,
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
