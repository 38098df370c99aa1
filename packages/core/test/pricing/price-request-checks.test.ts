import { describe, expect, it, vi } from "vitest";
import { snapshot, thrown } from "../support.js";

// An epoch-0 sheet: a request priced "at" 0 ms (1970) would find it.
const always = snapshot({
  snapshotId: "since-1970",
  effectiveFrom: "1970-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "3" } },
});
const model = { billableModel: "test-model" };

describe("InMemoryPricingSource: each request is checked, the first one of a process included", () => {
  it("a request without `at` is invalid_input naming `at`, not priced at 1970", async () => {
    // A fresh module: its cache of the last valid `at` starts empty (undefined, time 0).
    vi.resetModules();
    const { InMemoryPricingSource } = await import("../../src/index.js");
    const source = new InMemoryPricingSource([always] as never);
    const e = thrown(() => source.resolvePriceSync({ model } as never)) as {
      code?: string;
      issues?: Array<{ path: string }>;
    };
    expect(e.code).toBe("invalid_input");
    expect(e.issues?.map((i) => i.path)).toContain("at");
    // And after a valid one too.
    expect(source.resolvePriceSync({ model, at: "2026-01-01T00:00:00Z" }).status).toBe("priced");
    const again = thrown(() => source.resolvePriceSync({ model } as never)) as { code?: string };
    expect(again.code).toBe("invalid_input");
  });

  it("reads the model once: a getter cannot pass the check with one value and be looked up with another", async () => {
    vi.resetModules();
    const { InMemoryPricingSource } = await import("../../src/index.js");
    const source = new InMemoryPricingSource([always] as never);
    let reads = 0;
    const request = {
      get model() {
        reads++;
        return reads === 1 ? model : 42;
      },
      at: "2026-01-01T00:00:00Z",
    };
    expect(source.resolvePriceSync(request as never).status).toBe("priced");
    expect(reads).toBe(1);
  });
});

describe("InMemoryPricingSource: the model's own fields are read once too", () => {
  it("billableModel, region and tier getters that change their answer after the check do not reach the lookup or the answer", async () => {
    const { InMemoryPricingSource } = await import("../../src/index.js");
    const other = snapshot({
      snapshotId: "other-model",
      model: { billableModel: "other-model" },
      effectiveFrom: "1970-01-01T00:00:00Z",
      prices: { input_tokens: { perMillion: "9" } },
    });
    const source = new InMemoryPricingSource([always, other] as never);
    const reads: Record<string, number> = {};
    const flip = (key: string, first: unknown, later: unknown) => {
      reads[key] = (reads[key] ?? 0) + 1;
      return reads[key] === 1 ? first : later;
    };
    const request = {
      model: {
        get billableModel() {
          return flip("billableModel", "test-model", "other-model");
        },
        get tier() {
          return flip("tier", undefined, { not: "a tier" });
        },
        get region() {
          return flip("region", undefined, "x".repeat(300));
        },
      },
      at: "2026-01-01T00:00:00Z",
    };
    const resolution = source.resolvePriceSync(request as never);
    expect(resolution.status).toBe("priced");
    if (resolution.status !== "priced") return;
    expect(resolution.snapshot.snapshotId).toBe("since-1970");
    expect(resolution.tier).toBe("standard");
    expect(reads).toEqual({ billableModel: 1, tier: 1, region: 1 });
  });
});
