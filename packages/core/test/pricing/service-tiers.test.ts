import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  canonicalServiceTier,
  modelMatchOf,
  type PriceResolution,
  SERVICE_TIERS,
  serviceTierOf,
  snapshotPricesTier,
} from "../../src/adapter.js";
import { NoSnapshotForTierError } from "../../src/errors/index.js";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  LatchValidationError,
  type PriceSnapshotInput,
} from "../../src/index.js";
import { ctx, observation, snapshot, thrown } from "../support.js";

const engine = new DefaultRatingEngine();
const AT = "2026-03-01T12:00:01Z";

/** gpt-5 as OpenAI prices it per million tokens: standard 1.25 / 10, priority 2.5 / 20, flex and batch 0.625 / 5. */
const gpt5 = (
  tier: string | undefined,
  input: string,
  output: string,
  extra: Partial<PriceSnapshotInput> = {},
) =>
  snapshot({
    snapshotId: `gpt-5:${tier ?? "standard"}`,
    model: tier === undefined ? { billableModel: "gpt-5" } : { billableModel: "gpt-5", tier },
    prices: { input_tokens: { perMillion: input }, output_tokens: { perMillion: output } },
    ...extra,
  });
const standard = gpt5(undefined, "1.25", "10");
const priority = gpt5("priority", "2.5", "20");
const flex = gpt5("flex", "0.625", "5");
const batch = gpt5("batch", "0.625", "5");
const sheet = new InMemoryPricingSource([standard, priority, flex, batch] as never);

/** Resolves and rates 1,000 input + 100 output tokens of gpt-5 in `tier`. */
function rateIn(source: InMemoryPricingSource, tier: string | undefined) {
  const model = tier === undefined ? { billableModel: "gpt-5" } : { billableModel: "gpt-5", tier };
  const obs = observation({ input_tokens: 1000, output_tokens: 100 }, { model });
  const resolution = source.resolvePriceSync({ model, at: AT, providerId: "openai" });
  if (resolution.status !== "priced") return { resolution, record: undefined };
  const match = modelMatchOf(resolution);
  const record = engine.rate(obs, resolution.snapshot as never, match ? { ...ctx, modelMatch: match } : ctx);
  return { resolution, record };
}

describe("service tiers: a call is priced only in its own tier", () => {
  it("standard (no tier, or OpenAI's `default`): 1,000 × 1.25 + 100 × 10 per million = 0.00225", () => {
    for (const tier of [undefined, "standard", "default"]) {
      const { resolution, record } = rateIn(sheet, tier);
      expect(resolution).toMatchObject({ status: "priced", tier: "standard", tierFallback: false });
      expect(record?.snapshotId).toBe("gpt-5:standard");
      expect(record?.total).toBe("0.00225");
    }
  });

  it("priority: 1,000 × 2.5 + 100 × 20 per million = 0.0045", () => {
    const { record } = rateIn(sheet, "priority");
    expect(record?.snapshotId).toBe("gpt-5:priority");
    expect(record?.total).toBe("0.0045");
  });

  it("flex: 1,000 × 0.625 + 100 × 5 per million = 0.001125", () => {
    const { record } = rateIn(sheet, "flex");
    expect(record?.snapshotId).toBe("gpt-5:flex");
    expect(record?.total).toBe("0.001125");
  });

  it("batch (declared by the caller): its own snapshot, 0.001125", () => {
    const { record } = rateIn(sheet, "batch");
    expect(record?.snapshotId).toBe("gpt-5:batch");
    expect(record?.total).toBe("0.001125");
  });

  it("scale with no snapshot for it is unpriced (no_snapshot_for_tier), never billed at standard", () => {
    const { resolution } = rateIn(sheet, "scale");
    expect(resolution).toEqual({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
      match: { rule: "exact", matchedModel: "gpt-5" },
      tier: "scale",
      pricedTiers: ["batch", "flex", "priority", "standard"],
    });
    expect(sheet.resolveSync({ billableModel: "gpt-5", tier: "scale" }, AT)).toBeUndefined();
    const e = thrown(() => sheet.require({ billableModel: "gpt-5", tier: "scale" }, AT));
    expect(e).toBeInstanceOf(NoSnapshotForTierError);
    expect(e).toMatchObject({ code: "no_snapshot_for_tier", billableModel: "gpt-5", tier: "scale" });
  });

  it("a snapshot without a tier prices standard only: a priority call on a standard-only sheet is unpriced", () => {
    const only = new InMemoryPricingSource([standard] as never);
    expect(rateIn(only, "priority").resolution).toMatchObject({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
      tier: "priority",
      pricedTiers: ["standard"],
    });
  });

  it("a tier-only sheet does not price standard calls either", () => {
    const only = new InMemoryPricingSource([priority] as never);
    expect(rateIn(only, undefined).resolution).toMatchObject({
      reason: "no_snapshot_for_tier",
      tier: "standard",
      pricedTiers: ["priority"],
    });
  });

  it("a declared fallback prices the tier when no snapshot names it: scale at priority's price, 0.0045", () => {
    const withFallback = new InMemoryPricingSource([
      standard,
      gpt5("priority", "2.5", "20", { fallbackTiers: ["scale"] }),
    ] as never);
    const { resolution, record } = rateIn(withFallback, "scale");
    expect(resolution).toMatchObject({ status: "priced", tier: "scale", tierFallback: true });
    expect(record?.snapshotId).toBe("gpt-5:priority");
    expect(record?.total).toBe("0.0045");
    // Priority itself is still its own tier.
    expect(rateIn(withFallback, "priority").resolution).toMatchObject({ tierFallback: false });
  });

  it("a snapshot naming the tier beats a fallback declared for it", () => {
    const both = new InMemoryPricingSource([
      gpt5(undefined, "1.25", "10", { fallbackTiers: ["flex", "batch"] }),
      flex,
    ] as never);
    expect(rateIn(both, "flex").record?.snapshotId).toBe("gpt-5:flex");
    expect(rateIn(both, "batch").record).toMatchObject({ snapshotId: "gpt-5:standard", total: "0.00225" });
  });

  it("a region-specific snapshot of the tier is preferred; a tier still beats a region", () => {
    const eu = gpt5("priority", "2.75", "22", {
      snapshotId: "gpt-5:priority:eu",
      model: { billableModel: "gpt-5", tier: "priority", region: "eu" },
    });
    const euStandard = gpt5(undefined, "1.375", "11", {
      snapshotId: "gpt-5:standard:eu",
      model: { billableModel: "gpt-5", region: "eu" },
      fallbackTiers: ["flex"],
    });
    const source = new InMemoryPricingSource([standard, priority, eu, euStandard] as never);
    const resolve = (tier: string, region?: string) =>
      source.resolveSync(
        region ? { billableModel: "gpt-5", tier, region } : { billableModel: "gpt-5", tier },
        AT,
      )?.snapshotId;
    expect(resolve("priority", "eu")).toBe("gpt-5:priority:eu");
    expect(resolve("priority", "us")).toBe("gpt-5:priority");
    expect(resolve("standard", "eu")).toBe("gpt-5:standard:eu");
    expect(resolve("flex", "eu")).toBe("gpt-5:standard:eu"); // the eu fallback
    expect(resolve("flex", "us")).toBeUndefined(); // the eu snapshot does not apply in us
  });

  it("the engine refuses a snapshot that does not price the observation's tier (typed error)", () => {
    const obs = observation({ input_tokens: 1000 }, { model: { billableModel: "gpt-5", tier: "priority" } });
    const e = thrown(() => engine.rate(obs, standard as never, ctx));
    expect(e).toBeInstanceOf(NoSnapshotForTierError);
    expect(e).toMatchObject({ tier: "priority", snapshotId: "gpt-5:standard", billableModel: "gpt-5" });
    // Nor the other way round: a standard call against a priority snapshot.
    const plain = observation({ input_tokens: 1000 }, { model: { billableModel: "gpt-5" } });
    expect(thrown(() => engine.rate(plain, priority as never, ctx))).toBeInstanceOf(NoSnapshotForTierError);
    // A declared fallback is accepted; "default" is standard.
    const scale = observation({ input_tokens: 1000 }, { model: { billableModel: "gpt-5", tier: "scale" } });
    const fallback = gpt5("priority", "2.5", "20", { fallbackTiers: ["scale"] });
    expect(engine.rate(scale, fallback as never, ctx).total).toBe("0.0025");
    const dflt = observation({ input_tokens: 1000 }, { model: { billableModel: "gpt-5", tier: "default" } });
    expect(engine.rate(dflt, standard as never, ctx).total).toBe("0.00125");
  });
});

describe("service tiers: snapshot validation", () => {
  const issuesOf = (s: PriceSnapshotInput) => {
    const e = thrown(() => new InMemoryPricingSource([s] as never));
    expect(e).toBeInstanceOf(LatchValidationError);
    return (e as LatchValidationError).issues.map((i) => `${i.path}: ${i.message}`);
  };

  it("rejects a fallback tier that is the snapshot's own or a duplicate (by canonical name)", () => {
    expect(issuesOf(gpt5(undefined, "1", "1", { fallbackTiers: ["default"] }))).toEqual([
      "snapshots.0.fallbackTiers.0: is the snapshot's own tier",
    ]);
    expect(issuesOf(gpt5("priority", "1", "1", { fallbackTiers: ["scale", "priority"] }))).toEqual([
      "snapshots.0.fallbackTiers.1: is the snapshot's own tier",
    ]);
    expect(issuesOf(gpt5("flex", "1", "1", { fallbackTiers: ["standard", "default"] }))).toEqual([
      "snapshots.0.fallbackTiers.1: duplicates an earlier tier",
    ]);
  });

  it("rejects two snapshots of one model falling back to the same tier at the same time", () => {
    const e = thrown(
      () =>
        new InMemoryPricingSource([
          gpt5(undefined, "1", "1", { fallbackTiers: ["scale"] }),
          gpt5("priority", "2", "2", { fallbackTiers: ["flex", "scale"] }),
        ] as never),
    );
    expect((e as LatchValidationError).issues[0]?.path).toBe("snapshots.1.fallbackTiers.1");
    // One after the other is fine.
    const later = gpt5("priority", "2", "2", {
      fallbackTiers: ["scale"],
      effectiveFrom: "2026-06-01T00:00:00Z",
    });
    const earlier = gpt5(undefined, "1", "1", {
      fallbackTiers: ["scale"],
      effectiveUntil: "2026-06-01T00:00:00Z",
    });
    const source = new InMemoryPricingSource([earlier, later] as never);
    expect(source.resolveSync({ billableModel: "gpt-5", tier: "scale" }, AT)?.snapshotId).toBe(
      "gpt-5:standard",
    );
    expect(
      source.resolveSync({ billableModel: "gpt-5", tier: "scale" }, "2026-07-01T00:00:00Z")?.snapshotId,
    ).toBe("gpt-5:priority");
  });

  it("treats `default` and an absent tier as one variant: their intervals may not overlap", () => {
    const e = thrown(
      () =>
        new InMemoryPricingSource([
          standard,
          gpt5("default", "1", "1", { snapshotId: "gpt-5:default" }),
        ] as never),
    );
    expect((e as LatchValidationError).issues[0]?.path).toBe("snapshots.1.effectiveFrom");
  });
});

// ── Property: a tier never falls back silently ─────────────────────────────────────
const TIERS = [...SERVICE_TIERS, "default"];
const tierArb = fc.option(fc.constantFrom(...TIERS), { nil: undefined });
const snapshotArb = fc.record({
  model: fc.constantFrom("m-a", "m-b"),
  tier: tierArb,
  region: fc.option(fc.constantFrom("eu", "us"), { nil: undefined }),
  fallbackTiers: fc.subarray([...SERVICE_TIERS]),
  from: fc.integer({ min: 0, max: 3 }),
  length: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
});
type SnapshotSpec = typeof snapshotArb extends fc.Arbitrary<infer T> ? T : never;
const callArb = fc.record({
  model: fc.constantFrom("m-a", "m-b", "m-c"),
  tier: tierArb,
  region: fc.option(fc.constantFrom("eu", "us"), { nil: undefined }),
  month: fc.integer({ min: 0, max: 6 }),
});
const month = (m: number) => `2026-${String(m + 1).padStart(2, "0")}-01T00:00:00Z`;

/** Builds a source from random snapshots, keeping those the source accepts (overlaps are refused). */
function sourceOf(specs: readonly SnapshotSpec[]) {
  const source = new InMemoryPricingSource();
  const kept: PriceSnapshotInput[] = [];
  specs.forEach((spec, i) => {
    const own = canonicalServiceTier(spec.tier ?? "standard");
    const s = snapshot({
      snapshotId: `s${i}`,
      model: {
        billableModel: spec.model,
        ...(spec.tier === undefined ? {} : { tier: spec.tier }),
        ...(spec.region === undefined ? {} : { region: spec.region }),
      },
      effectiveFrom: month(spec.from),
      ...(spec.length === undefined ? {} : { effectiveUntil: month(spec.from + spec.length) }),
      fallbackTiers: spec.fallbackTiers.filter((t) => t !== own),
      prices: { input_tokens: { perMillion: String(i + 1) } },
    });
    try {
      source.add(s as never);
      kept.push(s);
    } catch (error) {
      if (!(error instanceof LatchValidationError)) throw error;
    }
  });
  return { source, kept };
}

describe("service tiers: properties", () => {
  it("the snapshot used always prices the call's tier itself or by a declared fallback (only when none names it); else unpriced", () => {
    fc.assert(
      fc.property(fc.array(snapshotArb, { maxLength: 10 }), callArb, (specs, call) => {
        const { source, kept } = sourceOf(specs);
        const model = {
          billableModel: call.model,
          ...(call.tier === undefined ? {} : { tier: call.tier }),
          ...(call.region === undefined ? {} : { region: call.region }),
        };
        const at = month(call.month);
        const tier = serviceTierOf(model);
        const resolution: PriceResolution = source.resolvePriceSync({ model, at });
        // Snapshots of the call's model that apply at that time and region.
        const time = Date.parse(at);
        const applicable = kept.filter(
          (s) =>
            s.model.billableModel === call.model &&
            Date.parse(s.effectiveFrom) <= time &&
            (s.effectiveUntil === undefined || time < Date.parse(s.effectiveUntil)) &&
            (s.model.region === undefined || s.model.region === call.region),
        );
        const own = applicable.filter((s) => serviceTierOf(s.model) === tier);
        const fallback = applicable.filter((s) => snapshotPricesTier(s as never, tier) === "fallback");
        if (resolution.status === "priced") {
          const how = snapshotPricesTier(resolution.snapshot, tier);
          expect(how).toBeDefined();
          expect(resolution.tierFallback).toBe(how === "fallback");
          if (how === "fallback") expect(own).toEqual([]);
          // And the engine agrees: it rates the call against that snapshot.
          const obs = observation({ input_tokens: 1 }, { model, timing: { startedAt: at, completedAt: at } });
          expect(engine.rate(obs, resolution.snapshot, ctx).snapshotId).toBe(resolution.snapshot.snapshotId);
        } else if (applicable.length === 0) {
          expect(resolution.reason).toBe("no_snapshot");
        } else {
          expect(resolution.reason).toBe("no_snapshot_for_tier");
          expect(own).toEqual([]);
          expect(fallback).toEqual([]);
        }
        // A call is unpriced only when no applicable snapshot prices its tier.
        if (own.length + fallback.length > 0) expect(resolution.status).toBe("priced");
        // Every snapshot of another tier that does not declare this one is refused by the engine.
        for (const s of applicable) {
          if (snapshotPricesTier(s as never, tier) !== undefined) continue;
          const obs = observation({ input_tokens: 1 }, { model, timing: { startedAt: at, completedAt: at } });
          expect(thrown(() => engine.rate(obs, s as never, ctx))).toBeInstanceOf(NoSnapshotForTierError);
        }
      }),
      { numRuns: 400 },
    );
  });
});
