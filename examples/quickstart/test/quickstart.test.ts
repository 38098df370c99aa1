import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { LatchDecimal } from "@latch/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FINE_TUNE, renderReport, simulateDay } from "../src/simulation.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "latch-quickstart-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function filesUnder(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(root, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(join(entry.parentPath, entry.name));
  }
  return out.sort();
}

describe("quickstart: a simulated day on the embedded default", () => {
  it("prints totals that equal the sum of the exported rows", async () => {
    const result = await simulateDay({ calls: 800, outDir: dir });
    const report = renderReport(result).join("\n");
    expect(report).toContain(`total ${result.totalUsd} USD exact`);

    const files = await filesUnder(join(dir, "latch.billing-export.v1"));
    const parts = files.filter((f) => f.endsWith(".jsonl.gz"));
    expect(parts.length).toBeGreaterThan(0);
    let fromRows = new LatchDecimal(0);
    let rows = 0;
    for (const part of parts) {
      for (const line of gunzipSync(await readFile(part))
        .toString("utf8")
        .split("\n")) {
        if (line === "") continue;
        const row = JSON.parse(line) as { cost_delta: string; currency: string };
        expect(row.currency).toBe("USD");
        fromRows = fromRows.plus(row.cost_delta);
        rows++;
      }
    }
    expect(fromRows.toFixed()).toBe(result.totalUsd);

    // The manifests agree with the rows, exactly.
    let fromManifests = new LatchDecimal(0);
    let manifestRows = 0;
    for (const manifest of files.filter((f) => f.includes("/_manifests/"))) {
      const m = JSON.parse(await readFile(manifest, "utf8")) as {
        rows: number;
        totalsByCurrency: Record<string, { costDeltaExact: string }>;
      };
      manifestRows += m.rows;
      fromManifests = fromManifests.plus(m.totalsByCurrency.USD?.costDeltaExact ?? "0");
    }
    expect(fromManifests.toFixed()).toBe(result.totalUsd);
    expect(manifestRows).toBe(rows);
  });

  it("shows a tenant running out of quota and a late price re-rating unpriced calls", async () => {
    const result = await simulateDay({ calls: 800, outDir: dir });
    expect(result.denials.length).toBeGreaterThan(0);
    expect(new Set(result.denials.map((d) => d.tenant))).toEqual(new Set(["initech"]));
    expect(result.unpricedBeforeReRate).toBeGreaterThan(0);
    expect(result.reRated).toEqual({ rated: result.unpricedBeforeReRate, stillUnpriced: 0 });
    expect(result.summary.map((r) => r.group.model)).toEqual([
      "claude-sonnet-4-5-20250929",
      "ft:gpt-4.1-mini:acme::support",
      "gemini-2.5-pro",
      "gpt-4o-2024-08-06",
    ]);
    const requests = result.summary.reduce((n, r) => n + r.requests, 0);
    expect(requests).toBe(result.recorded);
    expect(result.recorded + result.denials.length).toBe(result.calls);
  });

  it("prices real model ids out of the box with the bundled catalog (gpt-4o-2024-08-06 as gpt-4o)", async () => {
    const result = await simulateDay({ calls: 40, outDir: dir });
    const gpt4o = result.summary.find((r) => r.group.model === "gpt-4o-2024-08-06");
    expect(gpt4o?.requests).toBeGreaterThan(0);
    expect(new LatchDecimal(gpt4o?.costByCurrency.USD ?? "0").gt(0)).toBe(true);
    // Only the tenant's own fine-tune waited for its (contract) price.
    expect(result.unpricedBeforeReRate).toBe(
      result.summary.find((r) => r.group.model === FINE_TUNE)?.requests,
    );
  });

  it("is deterministic: a second run writes the same export", async () => {
    const first = await simulateDay({ calls: 300, outDir: dir });
    const again = await simulateDay({ calls: 300, outDir: dir });
    expect(again.exportKeys).toEqual(first.exportKeys);
    expect(again.totalUsd).toBe(first.totalUsd);
  });
});
