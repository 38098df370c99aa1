import { access, readFile } from "node:fs/promises";
import {
  InMemoryPricingSource,
  importLiteLLMCostMap,
  LatchError,
  type LiteLLMImportOptions,
  type PriceSnapshot,
} from "@latch/core";
import { canonicalJson, type LiteLLMSkippedField, PriceSnapshotSchema, parseWith } from "@latch/core/adapter";
import { writeFileAtomic } from "./atomic-file.js";
import { CommandError } from "./exit-codes.js";

/** Schema id of the file `latch prices import` writes and `latch rate --prices` reads. */
export const PRICE_FILE_SCHEMA = "latch.price-snapshots.v1";

export interface PriceFile {
  schema: typeof PRICE_FILE_SCHEMA;
  snapshots: PriceSnapshot[];
}

export type PriceSourceKind = "latch" | "litellm";

export interface LoadedPrices {
  kind: PriceSourceKind;
  snapshots: PriceSnapshot[];
  /** LiteLLM fields that could not be mapped (empty for a Latch file). */
  skipped: LiteLLMSkippedField[];
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new CommandError(`${what}: cannot read ${path}${code ? ` (${code})` : ""}`, { cause: error });
  }
}

/**
 * Reads a price sheet: Latch's own snapshot file (`{ "schema": "latch.price-snapshots.v1",
 * "snapshots": [...] }`), a bare JSON array of snapshots, or a LiteLLM cost map
 * (`model_prices_and_context_window.json`), told apart by shape.
 */
export async function loadPriceSheet(
  path: string,
  what: string,
  litellm: Pick<LiteLLMImportOptions, "effectiveFrom" | "currency" | "includeFree"> = {},
): Promise<LoadedPrices> {
  const text = await readText(path, what);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CommandError(`${what}: ${path} is not JSON (${describe(error)})`);
  }
  try {
    if (Array.isArray(json)) {
      return { kind: "latch", snapshots: parseSnapshots(json, path), skipped: [] };
    }
    if (typeof json === "object" && json !== null && "snapshots" in json) {
      const file = json as { schema?: unknown; snapshots: unknown };
      if (file.schema !== undefined && file.schema !== PRICE_FILE_SCHEMA) {
        throw new CommandError(`${what}: ${path}: schema: expected "${PRICE_FILE_SCHEMA}"`);
      }
      if (!Array.isArray(file.snapshots)) {
        throw new CommandError(`${what}: ${path}: snapshots: expected an array`);
      }
      return { kind: "latch", snapshots: parseSnapshots(file.snapshots, path), skipped: [] };
    }
    const options: LiteLLMImportOptions = {};
    if (litellm.effectiveFrom !== undefined) options.effectiveFrom = litellm.effectiveFrom;
    if (litellm.currency !== undefined) options.currency = litellm.currency;
    if (litellm.includeFree !== undefined) options.includeFree = litellm.includeFree;
    const { snapshots, skipped } = importLiteLLMCostMap(text, options);
    if (snapshots.length === 0) {
      // `{"hello":"world"}` is not a price sheet that happens to be empty: say what is missing.
      throw new CommandError(
        `${what}: ${path} holds no prices: it is neither a Latch price file (missing field "snapshots") ` +
          `nor a LiteLLM cost map (no entry has a price field such as "input_cost_per_token"` +
          `${skipped.length > 0 ? `; ${skipped.length} field(s) skipped${litellm.includeFree ? "" : ", all-zero entries need --include-free"}` : ""})`,
      );
    }
    return { kind: "litellm", snapshots, skipped };
  } catch (error) {
    if (error instanceof CommandError) throw error;
    if (LatchError.isInstance(error)) throw new CommandError(`${what}: ${path}: ${error.message}`);
    throw error;
  }
}

function parseSnapshots(items: unknown[], path: string): PriceSnapshot[] {
  return items.map((item, i) =>
    parseWith(PriceSnapshotSchema, item, `price snapshot in ${path}`, `snapshots.${i}`),
  );
}

/** A pricing source over a price sheet, validated (no duplicate ids, no overlapping intervals). */
export function pricingSourceOf(
  snapshots: PriceSnapshot[],
  path: string,
  what: string,
): InMemoryPricingSource {
  try {
    return new InMemoryPricingSource(snapshots);
  } catch (error) {
    if (LatchError.isInstance(error)) throw new CommandError(`${what}: ${path}: ${error.message}`);
    throw error;
  }
}

/** Reads the CLI's price file; a missing file is an empty one. */
export async function readPriceFile(path: string, what: string): Promise<PriceSnapshot[]> {
  try {
    await access(path);
  } catch (error) {
    if ((error as { code?: string }).code === "ENOENT") return [];
  }
  const loaded = await loadPriceSheet(path, what);
  if (loaded.kind !== "latch") {
    throw new CommandError(
      `${what}: ${path} is a LiteLLM cost map, not a Latch price file: import it with \`latch prices import\``,
    );
  }
  return loaded.snapshots;
}

/** Writes the price file atomically, snapshots in a stable order (model, start, id). */
export async function writePriceFile(path: string, snapshots: PriceSnapshot[]): Promise<void> {
  const sorted = [...snapshots].sort(
    (a, b) =>
      cmp(a.model.billableModel, b.model.billableModel) ||
      cmp(a.effectiveFrom, b.effectiveFrom) ||
      cmp(a.snapshotId, b.snapshotId),
  );
  const file: PriceFile = { schema: PRICE_FILE_SCHEMA, snapshots: sorted };
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function variantKey(s: PriceSnapshot): string {
  return [s.model.billableModel, s.model.region ?? "", s.model.tier ?? "", s.model.vendor ?? ""].join(
    "\u0000",
  );
}

export interface MergeResult {
  snapshots: PriceSnapshot[];
  added: number;
  unchanged: number;
  /** Open-ended snapshots closed at the start of a newer one for the same model. */
  closed: number;
}

/**
 * Merges imported snapshots into the stored ones:
 * - the same `snapshotId` with the same content is left alone (re-importing is a no-op);
 *   with other content it is a conflict (nothing is written);
 * - a stored snapshot without `effectiveUntil` for the same model that started earlier is
 *   closed at the new snapshot's `effectiveFrom` (a new price sheet takes over from then on);
 * - any other overlap is an error naming both snapshots.
 */
export function mergeSnapshots(
  stored: PriceSnapshot[],
  incoming: PriceSnapshot[],
  where: string,
): MergeResult {
  const byId = new Map(stored.map((s) => [s.snapshotId, s]));
  let added = 0;
  let unchanged = 0;
  let closed = 0;
  for (const snapshot of incoming) {
    const existing = byId.get(snapshot.snapshotId);
    if (existing !== undefined) {
      if (canonicalJson(existing) === canonicalJson(snapshot)) {
        unchanged++;
        continue;
      }
      throw new CommandError(
        `${where}: snapshot ${snapshot.snapshotId} is already stored with other prices; import the new sheet with another --effective-from (LiteLLM) or another snapshotId`,
      );
    }
    const key = variantKey(snapshot);
    for (const [id, other] of byId) {
      if (variantKey(other) !== key || other.effectiveUntil !== undefined) continue;
      if (Date.parse(other.effectiveFrom) < Date.parse(snapshot.effectiveFrom)) {
        byId.set(id, { ...other, effectiveUntil: snapshot.effectiveFrom });
        closed++;
      }
    }
    byId.set(snapshot.snapshotId, snapshot);
    added++;
  }
  const snapshots = [...byId.values()];
  pricingSourceOf(snapshots, where, "prices import");
  return { snapshots, added, unchanged, closed };
}
