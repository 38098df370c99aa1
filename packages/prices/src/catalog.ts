import { InMemoryPricingSource, LatchValidationError, type PriceSnapshot } from "@latch/core";
import {
  canonicalJson,
  IsoTimestampSchema,
  isWellFormedText,
  PriceSnapshotSchema,
  parseWith,
} from "@latch/core/adapter";

/** The `format` of a catalog file; a reader refuses any other. */
export const PRICE_CATALOG_FORMAT = "latch.price-catalog.v1";

export const LITELLM_SOURCE_NAME = "LiteLLM model cost map";
export const LITELLM_MAP_URL =
  "https://raw.githubusercontent.com/BerriAI/litellm/main/model_prices_and_context_window.json";
export const LITELLM_LICENCE = "MIT";
export const LITELLM_COPYRIGHT = "Copyright (c) 2023 Berri AI";

/** Where a set of snapshots came from: the attribution the MIT licence asks to keep. */
export interface PriceCatalogSource {
  name: string;
  url: string;
  commit?: string;
  etag?: string;
  /**
   * `true` when this update also imported all-zero prices (`includeFree`): `latch prices update`
   * keeps doing so for this catalog, so a later update does not remove them.
   */
  includeFree?: true;
  /** The npm package and version the data was read from (`@pydantic/genai-prices@0.1.8`), when it came from one. */
  package?: string;
  /** ISO 8601 UTC. */
  fetchedAt: string;
  licence: string;
  copyright: string;
}

/** One dated snapshot and the index in `sources` of the map it was made from. */
export interface PriceCatalogEntry {
  source: number;
  snapshot: PriceSnapshot;
}

/**
 * A versioned price catalog: every snapshot ever imported, dated (`effectiveFrom`, and
 * `effectiveUntil` once a later import replaced or removed it), each attributed to its source.
 * Calls are priced at the snapshot in effect when they completed, so an update never re-prices
 * the past.
 */
export interface PriceCatalog {
  format: typeof PRICE_CATALOG_FORMAT;
  sources: PriceCatalogSource[];
  entries: PriceCatalogEntry[];
}

/** One model variant (model, region, service tier) in a {@link CatalogDiff}. */
export interface CatalogDiffItem {
  /** `model`, with ` [tier]` / ` @region` when the snapshot has them. */
  key: string;
  /** Changed: the meters whose price or tiers differ (`tiers` for the long-context tiers). */
  meters?: string[];
}

/** What an update changes, model variant by model variant. */
export interface CatalogDiff {
  added: CatalogDiffItem[];
  changed: CatalogDiffItem[];
  removed: CatalogDiffItem[];
  unchanged: number;
}

/** What {@link updatePriceCatalog} returns. */
export interface CatalogUpdate {
  /** The catalog after the update: `current` itself when nothing changed. */
  catalog: PriceCatalog;
  diff: CatalogDiff;
  /** Whether anything changed (false: writing it again would be a no-op). */
  changed: boolean;
}

const SUBJECT = "price catalog";

/**
 * Applies a freshly converted catalog (`convertLiteLlmCostMap`) to the current one:
 * - a model variant whose open snapshot prices the same (prices, tiers, vendor, currency) is
 *   unchanged: nothing is added, so applying the same map twice changes nothing;
 * - a variant priced differently: the open snapshot is closed (`effectiveUntil`) at the new
 *   snapshot's `effectiveFrom`, and the new one appended;
 * - a variant new to the catalog is appended; one no longer in the map is closed (removed from
 *   that date on, kept for the calls before it).
 *
 * The new source is recorded only when something changed. Pure: nothing is written.
 *
 * @throws LatchValidationError (`invalid_input`) when `incoming` is not one converted map (one
 *   source, one `effectiveFrom`), its date is not after the snapshots it would replace or is
 *   before the catalog's last change (an older map applied after a newer one), or it
 *   prices no model at all while the catalog does (an empty or truncated download).
 */
export function updatePriceCatalog(current: PriceCatalog | undefined, incoming: PriceCatalog): CatalogUpdate {
  const base = current ?? { format: PRICE_CATALOG_FORMAT, sources: [], entries: [] };
  if (incoming.sources.length !== 1) {
    throw LatchValidationError.at(
      SUBJECT,
      "incoming.sources",
      "expected exactly one source (one converted map)",
    );
  }
  const dates = new Set(incoming.entries.map((e) => e.snapshot.effectiveFrom));
  if (dates.size > 1) {
    throw LatchValidationError.at(
      SUBJECT,
      "incoming.entries",
      "expected one effectiveFrom (one converted map)",
    );
  }
  const at = [...dates][0] ?? incoming.sources[0]?.fetchedAt ?? "";
  if (incoming.entries.length === 0 && base.entries.some((e) => e.snapshot.effectiveUntil === undefined)) {
    // An empty or truncated download must not end every price in the catalog.
    throw LatchValidationError.at(
      SUBJECT,
      "incoming.entries",
      "the map prices no model: refusing to remove them all",
    );
  }

  const open = new Map<string, number>();
  for (const [i, e] of base.entries.entries()) {
    if (e.snapshot.effectiveUntil === undefined) open.set(variantKey(e.snapshot), i);
  }
  const entries = base.entries.map((e) => ({ ...e }));
  const sourceIndex = base.sources.length;
  const diff: CatalogDiff = { added: [], changed: [], removed: [], unchanged: 0 };
  const seen = new Set<string>();
  const close = (i: number) => {
    const entry = entries[i] as PriceCatalogEntry;
    if (Date.parse(at) <= Date.parse(entry.snapshot.effectiveFrom)) {
      throw LatchValidationError.at(
        SUBJECT,
        "incoming.effectiveFrom",
        `must be after ${entry.snapshot.effectiveFrom}, when the prices it replaces took effect`,
      );
    }
    entry.snapshot = { ...entry.snapshot, effectiveUntil: at };
  };

  for (const { snapshot } of incoming.entries) {
    const key = variantKey(snapshot);
    seen.add(key);
    const i = open.get(key);
    const before = i === undefined ? undefined : (entries[i] as PriceCatalogEntry).snapshot;
    if (before !== undefined && samePricing(before, snapshot)) {
      diff.unchanged++;
      continue;
    }
    if (i !== undefined && before !== undefined) {
      close(i);
      diff.changed.push({ key: label(snapshot), meters: changedMeters(before, snapshot) });
    } else {
      diff.added.push({ key: label(snapshot) });
    }
    entries.push({ source: sourceIndex, snapshot });
  }
  for (const [key, i] of open) {
    if (seen.has(key)) continue;
    close(i);
    diff.removed.push({ key: label((entries[i] as PriceCatalogEntry).snapshot) });
  }

  const changed = diff.added.length + diff.changed.length + diff.removed.length > 0;
  if (!changed) return { catalog: base, diff, changed };
  // An older map applied after a newer one (a stale download, two updates run out of order)
  // would date prices before what the catalog already records: refused, whatever it adds.
  const last = lastChange(base);
  if (last !== undefined && Date.parse(at) < Date.parse(last)) {
    throw LatchValidationError.at(
      SUBJECT,
      "incoming.effectiveFrom",
      `must not be before ${last}, the catalog's last change`,
    );
  }
  const catalog: PriceCatalog = {
    format: PRICE_CATALOG_FORMAT,
    sources: [...base.sources, incoming.sources[0] as PriceCatalogSource],
    entries,
  };
  pricingSourceOf(catalog); // no duplicate ids, no overlapping intervals
  return { catalog, diff, changed };
}

/**
 * Validates a parsed catalog file: the format, every source, every snapshot (as
 * `PriceSnapshotSchema`), every `source` index, and that the snapshots load together (no
 * duplicate id, no overlapping interval for one model variant).
 *
 * @throws LatchValidationError (`invalid_input`) naming the path, e.g. `entries.3.snapshot.prices`.
 */
export function parsePriceCatalog(value: unknown): PriceCatalog {
  const issue = (path: string, message: string) => LatchValidationError.at(SUBJECT, path, message);
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw issue("", "expected an object");
  const v = value as Record<string, unknown>;
  if (v.format !== PRICE_CATALOG_FORMAT) throw issue("format", `expected "${PRICE_CATALOG_FORMAT}"`);
  if (!Array.isArray(v.sources)) throw issue("sources", "expected an array");
  if (!Array.isArray(v.entries)) throw issue("entries", "expected an array");
  const sources = v.sources.map((s, i) => parseSource(s, `sources.${i}`));
  const entries = v.entries.map((e, i): PriceCatalogEntry => {
    if (typeof e !== "object" || e === null) throw issue(`entries.${i}`, "expected an object");
    const { source, snapshot } = e as { source?: unknown; snapshot?: unknown };
    if (typeof source !== "number" || !Number.isInteger(source) || source < 0 || source >= sources.length) {
      throw issue(`entries.${i}.source`, "expected the index of one of sources");
    }
    return { source, snapshot: parseWith(PriceSnapshotSchema, snapshot, SUBJECT, `entries.${i}.snapshot`) };
  });
  const catalog: PriceCatalog = { format: PRICE_CATALOG_FORMAT, sources, entries };
  pricingSourceOf(catalog);
  return catalog;
}

/** A pricing source over every snapshot of the catalog, for `createLatch({ pricing })`. */
export function pricingSourceOf(catalog: PriceCatalog): InMemoryPricingSource {
  return new InMemoryPricingSource(catalog.entries.map((e) => e.snapshot));
}

function parseSource(value: unknown, path: string): PriceCatalogSource {
  const issue = (field: string, message: string) =>
    LatchValidationError.at(SUBJECT, `${path}${field ? `.${field}` : ""}`, message);
  if (typeof value !== "object" || value === null) throw issue("", "expected an object");
  const s = value as Record<string, unknown>;
  const text = (field: string, optional: boolean): string | undefined => {
    const v = s[field];
    if (v === undefined && optional) return undefined;
    if (typeof v !== "string" || v.length === 0 || v.length > 2048)
      throw issue(field, "expected 1 to 2,048 characters");
    if (!isWellFormedText(v)) throw issue(field, "must not contain U+0000 or an unpaired surrogate");
    return v;
  };
  const out: PriceCatalogSource = {
    name: text("name", false) as string,
    url: text("url", false) as string,
    fetchedAt: text("fetchedAt", false) as string,
    licence: text("licence", false) as string,
    copyright: text("copyright", false) as string,
  };
  if (!IsoTimestampSchema.safeParse(out.fetchedAt).success) {
    throw issue("fetchedAt", "expected an ISO 8601 UTC timestamp");
  }
  const commit = text("commit", true);
  const etag = text("etag", true);
  const pkg = text("package", true);
  if (commit !== undefined) out.commit = commit;
  if (etag !== undefined) out.etag = etag;
  if (pkg !== undefined) out.package = pkg;
  if (s.includeFree !== undefined) {
    if (s.includeFree !== true) throw issue("includeFree", "expected true or absent");
    out.includeFree = true;
  }
  return out;
}

/** The latest `effectiveFrom` or `effectiveUntil` in the catalog, or `undefined` when it is empty. */
function lastChange(catalog: PriceCatalog): string | undefined {
  let last: string | undefined;
  for (const { snapshot } of catalog.entries) {
    for (const date of [snapshot.effectiveFrom, snapshot.effectiveUntil]) {
      if (date !== undefined && (last === undefined || Date.parse(date) > Date.parse(last))) last = date;
    }
  }
  return last;
}

function variantKey(s: PriceSnapshot): string {
  return JSON.stringify([s.model.billableModel, s.model.region ?? "", s.model.tier ?? ""]);
}

function label(s: PriceSnapshot): string {
  return `${s.model.billableModel}${s.model.tier ? ` [${s.model.tier}]` : ""}${s.model.region ? ` @${s.model.region}` : ""}`;
}

/** What prices a call: everything but the snapshot's id and dates. */
function pricing(s: PriceSnapshot): string {
  const { snapshotId: _id, effectiveFrom: _from, effectiveUntil: _until, ...rest } = s;
  return canonicalJson(rest);
}

function samePricing(a: PriceSnapshot, b: PriceSnapshot): boolean {
  return pricing(a) === pricing(b);
}

function changedMeters(a: PriceSnapshot, b: PriceSnapshot): string[] {
  const meters = new Set([...Object.keys(a.prices), ...Object.keys(b.prices)]);
  const out = [...meters]
    .filter(
      (m) =>
        canonicalJson(a.prices[m as keyof typeof a.prices] ?? null) !==
        canonicalJson(b.prices[m as keyof typeof b.prices] ?? null),
    )
    .sort();
  if (canonicalJson(a.tiers ?? null) !== canonicalJson(b.tiers ?? null)) out.push("tiers");
  if (out.length === 0) out.push("model");
  return out;
}
