import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  createLatch,
  LatchValidationError,
  MemoryObservationStore,
  MemoryRatedRecordStore,
} from "@latch/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  convertLiteLlmCostMap,
  formatCatalogDiff,
  loadPriceCatalog,
  type PriceCatalog,
  priceCatalog,
  updatePriceCatalog,
  writePriceCatalog,
} from "../src/index.js";

// Hand-written maps in LiteLLM's format (per-token prices in exponent notation).
const mapV1 = JSON.stringify({
  "model-a": {
    mode: "chat",
    litellm_provider: "openai",
    input_cost_per_token: 2.5e-6,
    output_cost_per_token: 1e-5,
  },
  "model-b": {
    mode: "chat",
    litellm_provider: "openai",
    input_cost_per_token: 1e-6,
    output_cost_per_token: 2e-6,
  },
});
const mapV2 = `{
  "model-a": {"mode": "chat", "litellm_provider": "openai", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05},
  "model-c": {"mode": "embedding", "litellm_provider": "openai", "input_cost_per_token": 1.3e-07}
}`;
const v1 = () => convertLiteLlmCostMap(mapV1, { source: { fetchedAt: "2026-01-01T00:00:00Z" } }).catalog;
const v2 = () =>
  convertLiteLlmCostMap(mapV2, { source: { fetchedAt: "2026-04-01T00:00:00Z", commit: "c2" } }).catalog;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-prices-catalog-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("updatePriceCatalog", () => {
  it("starts a catalog, then is a no-op for the same map", () => {
    const first = updatePriceCatalog(undefined, v1());
    expect(first.changed).toBe(true);
    expect(first.diff.added.map((d) => d.key)).toEqual(["model-a", "model-b"]);
    const again = updatePriceCatalog(first.catalog, v1());
    expect(again).toEqual({
      catalog: first.catalog,
      diff: { added: [], changed: [], removed: [], unchanged: 2 },
      changed: false,
    });
    // Fetched again later, same prices: still nothing to write.
    const later = convertLiteLlmCostMap(mapV1, { source: { fetchedAt: "2026-02-01T00:00:00Z" } }).catalog;
    expect(updatePriceCatalog(first.catalog, later).changed).toBe(false);
  });

  it("versions prices: a change closes the old snapshot at the new date; a removed model is closed; history stays", () => {
    const { catalog, diff } = updatePriceCatalog(updatePriceCatalog(undefined, v1()).catalog, v2());
    expect(diff).toEqual({
      added: [{ key: "model-c" }],
      changed: [{ key: "model-a", meters: ["input_tokens"] }],
      removed: [{ key: "model-b" }],
      unchanged: 0,
    });
    expect(catalog.sources.map((s) => s.commit)).toEqual([undefined, "c2"]);
    const view = catalog.entries.map((e) => [
      e.source,
      e.snapshot.model.billableModel,
      e.snapshot.prices.input_tokens,
      e.snapshot.effectiveFrom,
      e.snapshot.effectiveUntil,
    ]);
    expect(view).toEqual([
      [0, "model-a", { perMillion: "2.5" }, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"],
      [0, "model-b", { perMillion: "1" }, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z"],
      [1, "model-a", { perMillion: "2" }, "2026-04-01T00:00:00Z", undefined],
      [1, "model-c", { perMillion: "0.13" }, "2026-04-01T00:00:00Z", undefined],
    ]);
    expect(formatCatalogDiff(diff)).toBe(
      "prices changed: 1, added: 1, removed: 1, unchanged: 0\n~ model-a: input_tokens\n+ model-c\n- model-b",
    );
  });

  it("shows a hostile model id escaped in the summary, never raw control characters", () => {
    const text = formatCatalogDiff({
      added: [{ key: "evil\u0000\u001b[2Jmodel" }],
      changed: [],
      removed: [],
      unchanged: 0,
    });
    expect(text).toBe("prices changed: 0, added: 1, removed: 0, unchanged: 0\n+ evil\\u0000\\u001b[2Jmodel");
  });

  it("refuses a map that prices nothing instead of removing every model", () => {
    const current = updatePriceCatalog(undefined, v1()).catalog;
    const empty = convertLiteLlmCostMap("{}", { source: { fetchedAt: "2026-04-01T00:00:00Z" } }).catalog;
    expect(() => updatePriceCatalog(current, empty)).toThrow(/prices no model/);
  });

  it("refuses a map dated before the prices it would replace", () => {
    const current = updatePriceCatalog(undefined, v2()).catalog;
    const older = convertLiteLlmCostMap(mapV1, { source: { fetchedAt: "2026-01-01T00:00:00Z" } }).catalog;
    expect(() => updatePriceCatalog(current, older)).toThrow(LatchValidationError);
  });
});

describe("catalog files", () => {
  it("writes atomically (no temporary file left), reads back equal, and prices createLatch() in one option", async () => {
    const path = join(dir, "prices.catalog.json");
    const catalog = updatePriceCatalog(updatePriceCatalog(undefined, v1()).catalog, v2()).catalog;
    await writePriceCatalog(path, catalog);
    await writePriceCatalog(path, catalog);
    expect((await readdir(dir)).filter((f) => f.includes(".partial"))).toEqual([]);
    expect(await loadPriceCatalog(path)).toEqual(catalog);

    const latch = createLatch({
      observations: new MemoryObservationStore(),
      rated: new MemoryRatedRecordStore(),
      pricing: await priceCatalog(path),
      spoolDir: join(dir, "spool"),
    });
    const call = (eventId: string, completedAt: string) =>
      latch.record({
        api: "openaiChat",
        usage: { prompt_tokens: 1_000_000, completion_tokens: 0, total_tokens: 1_000_000 },
        observation: {
          eventId,
          subject: { tenantId: "acme" },
          model: { billableModel: "model-a" },
          provider: { providerId: "openai" },
          source: { kind: "provider_reported" },
          outcome: { kind: "success" },
          timing: { startedAt: completedAt, completedAt },
        },
      });
    // A call before the update is priced at the old price, one after at the new.
    const march = await call("e-march", "2026-03-01T00:00:00Z");
    const may = await call("e-may", "2026-05-01T00:00:00Z");
    expect(march.status === "rated" && march.record.total).toBe("2.5");
    expect(may.status === "rated" && may.record.total).toBe("2");
    await latch.close();
  });

  it("refuses a file that is not a catalog, naming the field", async () => {
    const path = join(dir, "bad.json");
    const catalog: PriceCatalog = updatePriceCatalog(undefined, v1()).catalog;
    await writeFile(path, JSON.stringify({ ...catalog, format: "other" }));
    await expect(loadPriceCatalog(path)).rejects.toMatchObject({ issues: [{ path: "format" }] });
    await writeFile(
      path,
      JSON.stringify({ ...catalog, entries: [{ source: 7, snapshot: catalog.entries[0]?.snapshot }] }),
    );
    await expect(loadPriceCatalog(path)).rejects.toMatchObject({ issues: [{ path: "entries.0.source" }] });
    await writeFile(path, "{ not json");
    await expect(loadPriceCatalog(path)).rejects.toBeInstanceOf(LatchValidationError);
  });
});
