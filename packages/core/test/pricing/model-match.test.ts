import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { modelMatchOf, RatedUsageRecordSchema, ratedRecordHash } from "../../src/adapter.js";
import { AmbiguousModelError } from "../../src/errors/index.js";
import {
  DefaultRatingEngine,
  InMemoryPricingSource,
  type ModelCatalog,
  matchModel,
  type PriceSnapshotInput,
} from "../../src/index.js";
import { qualifierForms, withoutDateSuffix } from "../../src/pricing/model-match.js";
import { ctx, observation, snapshot, thrown } from "../support.js";

const engine = new DefaultRatingEngine();
const AT = "2026-03-01T12:00:01Z";

const priced = (
  billableModel: string,
  input: string,
  output: string,
  extra: Partial<PriceSnapshotInput> = {},
) =>
  snapshot({
    snapshotId: billableModel,
    model: { billableModel },
    prices: { input_tokens: { perMillion: input }, output_tokens: { perMillion: output } },
    ...extra,
  });

// A sheet spelled the way LiteLLM's map spells its ids.
const SHEET = [
  priced("gpt-4o", "2.5", "10", { aliases: ["acme-chat"] }),
  priced("gpt-4o-2024-05-13", "5", "15"),
  priced("openrouter/openai/gpt-4o", "2.6", "10.4"),
  priced("claude-3-5-sonnet-20241022", "3", "15"),
  priced("anthropic.claude-3-5-sonnet-20240620-v1:0", "3.1", "15.5"),
  priced("claude-3-opus-20240229", "15", "75"),
  priced("claude-3-7-sonnet", "3", "15"),
  priced("gpt-4", "30", "60"),
];
const source = new InMemoryPricingSource(SHEET as never);

/** Resolves `model` as a call from `providerId`, rates 1,000 input + 100 output tokens. */
function rate(model: string, providerId = "openai", src = source) {
  const obs = observation(
    { input_tokens: 1000, output_tokens: 100 },
    { model: { billableModel: model }, provider: { providerId } },
  );
  const resolution = src.resolvePriceSync({ model: obs.model, at: AT, providerId });
  if (resolution.status !== "priced") return { resolution, record: undefined };
  const match = modelMatchOf(resolution);
  const record = engine.rate(obs, resolution.snapshot, match ? { ...ctx, modelMatch: match } : ctx);
  return { resolution, record };
}

describe("model matching: rules", () => {
  it("exact: the sheet's own id wins, even over a shorter one (1,000 × 5 + 100 × 15 per million = 0.0065)", () => {
    const { resolution, record } = rate("gpt-4o-2024-05-13");
    expect(resolution).toMatchObject({ match: { rule: "exact", matchedModel: "gpt-4o-2024-05-13" } });
    expect(record?.total).toBe("0.0065");
    expect(record !== undefined && "modelMatch" in record).toBe(false);
    // The same record, byte for byte, as before model matching existed (hash taken from the base commit).
    expect(ratedRecordHash(record as never)).toBe(
      "sha256:74a0e131b8d911ca96df484b4886eed4ff270331c972ec15ba40a9ce4dd8c400",
    );
  });

  it("exact wins over the call's provider: an OpenRouter call of gpt-4o is priced at gpt-4o", () => {
    expect(rate("gpt-4o", "openrouter").resolution).toMatchObject({
      match: { rule: "exact", matchedModel: "gpt-4o" },
    });
  });

  it("alias: a declared alias (2.5 / 10 ⇒ 0.0035), stored on the record", () => {
    const { record } = rate("acme-chat");
    expect(record?.total).toBe("0.0035");
    expect(record?.modelMatch).toEqual({ rule: "alias", matchedModel: "gpt-4o" });
    expect(record?.observation.model.billableModel).toBe("acme-chat");
  });

  it.each([
    // [call id, provider, matched id, total]
    ["openai/gpt-4o", "openai", "gpt-4o", "0.0035"],
    ["openai/gpt-4o", "openrouter", "openrouter/openai/gpt-4o", "0.00364"], // 2.6 + 1.04 thousandths
    ["anthropic/claude-3-5-sonnet-20241022", "anthropic", "claude-3-5-sonnet-20241022", "0.0045"],
    [
      "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
      "bedrock",
      "anthropic.claude-3-5-sonnet-20240620-v1:0",
      "0.00465",
    ],
    ["eu.anthropic.claude-3-5-sonnet-20241022-v2:0", "bedrock", "claude-3-5-sonnet-20241022", "0.0045"],
    [
      "bedrock/global.anthropic.claude-3-5-sonnet-20241022-v2:0",
      "bedrock",
      "claude-3-5-sonnet-20241022",
      "0.0045",
    ],
    ["claude-3-opus@20240229", "vertex_ai", "claude-3-opus-20240229", "0.0225"],
  ])("provider_prefix: %s from %s → %s (%s)", (model, provider, matched, total) => {
    const { record } = rate(model, provider);
    expect(record?.modelMatch).toEqual({ rule: "provider_prefix", matchedModel: matched });
    expect(record?.total).toBe(total);
  });

  it.each([
    ["gpt-4o-2024-08-06", "openai", "gpt-4o", "0.0035"],
    ["gpt-4o-2024-11-20", "openai", "gpt-4o", "0.0035"],
    ["claude-3-7-sonnet-20250219", "anthropic", "claude-3-7-sonnet", "0.0045"],
    ["claude-3-7-sonnet-latest", "anthropic", "claude-3-7-sonnet", "0.0045"],
    ["openai/gpt-4o-2024-08-06", "openrouter", "openrouter/openai/gpt-4o", "0.00364"],
    ["anthropic/claude-3-7-sonnet-20250219", "anthropic", "claude-3-7-sonnet", "0.0045"],
  ])("dated_suffix: %s from %s → %s (%s)", (model, provider, matched, total) => {
    const { record } = rate(model, provider);
    expect(record?.modelMatch).toEqual({ rule: "dated_suffix", matchedModel: matched });
    expect(record?.total).toBe(total);
  });

  it("no rule matches: no_snapshot (four-digit suffixes are not dates; unknown models stay unknown)", () => {
    expect(rate("gpt-4-0613").resolution).toEqual({ status: "unpriced", reason: "no_snapshot" });
    expect(rate("gpt-9").resolution).toEqual({ status: "unpriced", reason: "no_snapshot" });
    // Another provider's price is never used: only the call's own provider is ever added.
    const azureOnly = new InMemoryPricingSource([priced("azure/gpt-4o-mini", "0.165", "0.66")] as never);
    expect(rate("gpt-4o-mini", "openai", azureOnly).resolution).toEqual({
      status: "unpriced",
      reason: "no_snapshot",
    });
    expect(rate("gpt-4o-mini", "azure", azureOnly).record?.modelMatch).toEqual({
      rule: "provider_prefix",
      matchedModel: "azure/gpt-4o-mini",
    });
  });

  it("never removes a reseller's path segment: its price is its own, not the model maker's", () => {
    // The sheet prices gpt-4o at OpenAI's price only.
    expect(rate("gpt-4o", "azure").resolution).toMatchObject({
      match: { rule: "exact", matchedModel: "gpt-4o" },
    });
    for (const [model, provider] of [
      ["azure/gpt-4o", "azure"],
      ["azure/gpt-4o", undefined],
      ["groq/gpt-4o", "groq"],
      ["vertex_ai/gpt-4o", "openai"],
      ["azure/openai/gpt-4o", "openrouter"],
      ["azure/gpt-4o-2024-08-06", "azure"],
    ] as const) {
      expect(rate(model, provider).resolution, `${model} from ${provider}`).toEqual({
        status: "unpriced",
        reason: "no_snapshot",
      });
    }
    // A router and a model maker's namespace keep the price: removed.
    expect(rate("openai/gpt-4o", "openai").record?.modelMatch).toEqual({
      rule: "provider_prefix",
      matchedModel: "gpt-4o",
    });
    expect(qualifierForms("azure/gpt-4o-mini")).toEqual(["azure/gpt-4o-mini"]);
    expect(qualifierForms("openai/azure/gpt-4o-mini")).toEqual([
      "openai/azure/gpt-4o-mini",
      "azure/gpt-4o-mini",
    ]);
  });

  it("matching sees only the snapshots in effect at the call's time: an alias that moved", () => {
    const moved = new InMemoryPricingSource([
      priced("gpt-4o-2024-05-13", "5", "15", {
        aliases: ["gpt-4o-current"],
        effectiveUntil: "2026-02-01T00:00:00Z",
      }),
      priced("gpt-4o-2024-08-06", "2.5", "10", {
        aliases: ["gpt-4o-current"],
        effectiveFrom: "2026-02-01T00:00:00Z",
      }),
    ] as never);
    const at = (time: string) =>
      moved.resolvePriceSync({ model: { billableModel: "gpt-4o-current" }, at: time });
    expect(at("2026-01-15T00:00:00Z")).toMatchObject({
      match: { rule: "alias", matchedModel: "gpt-4o-2024-05-13" },
    });
    expect(at("2026-03-15T00:00:00Z")).toMatchObject({
      match: { rule: "alias", matchedModel: "gpt-4o-2024-08-06" },
    });
  });

  it("the tier is applied after matching: a priority call of a dated id never falls through to another model", () => {
    const tiers = new InMemoryPricingSource([
      priced("gpt-4o", "2.5", "10"),
      priced("gpt-4o-2024-05-13", "5", "15"),
      priced("gpt-4o-priority", "5", "20", {
        snapshotId: "gpt-4o:priority",
        model: { billableModel: "gpt-4o", tier: "priority" },
      }),
    ] as never);
    const resolve = (billableModel: string) =>
      tiers.resolvePriceSync({ model: { billableModel, tier: "priority" }, at: AT });
    expect(resolve("gpt-4o-2024-08-06")).toMatchObject({
      status: "priced",
      snapshot: { snapshotId: "gpt-4o:priority" },
      match: { rule: "dated_suffix", matchedModel: "gpt-4o" },
    });
    // gpt-4o-2024-05-13 is priced exactly, in standard only: unpriced, not gpt-4o's priority price.
    expect(resolve("gpt-4o-2024-05-13")).toEqual({
      status: "unpriced",
      reason: "no_snapshot_for_tier",
      match: { rule: "exact", matchedModel: "gpt-4o-2024-05-13" },
      tier: "priority",
      pricedTiers: ["standard"],
    });
  });

  it("aliases resolve to the model: its snapshots of every tier apply", () => {
    const tiers = new InMemoryPricingSource([
      priced("gpt-4o", "2.5", "10", { aliases: ["acme-chat"] }),
      priced("gpt-4o", "5", "20", {
        snapshotId: "gpt-4o:priority",
        model: { billableModel: "gpt-4o", tier: "priority" },
      }),
    ] as never);
    const r = tiers.resolvePriceSync({ model: { billableModel: "acme-chat", tier: "priority" }, at: AT });
    expect(r).toMatchObject({ snapshot: { snapshotId: "gpt-4o:priority" }, match: { rule: "alias" } });
  });
});

describe("model matching: ambiguity is unpriced, never a guess", () => {
  it("alias: two models declaring the same alias", () => {
    const two = new InMemoryPricingSource([
      priced("gpt-4o", "2.5", "10", { aliases: ["chat-default"] }),
      priced("claude-3-7-sonnet", "3", "15", { aliases: ["chat-default"] }),
    ] as never);
    expect(two.resolvePriceSync({ model: { billableModel: "chat-default" }, at: AT })).toEqual({
      status: "unpriced",
      reason: "ambiguous_model",
      rule: "alias",
      candidates: ["claude-3-7-sonnet", "gpt-4o"],
    });
    const e = thrown(() => two.require({ billableModel: "chat-default" }, AT));
    expect(e).toBeInstanceOf(AmbiguousModelError);
    expect(e).toMatchObject({
      code: "ambiguous_model",
      rule: "alias",
      candidates: ["claude-3-7-sonnet", "gpt-4o"],
    });
  });

  it("provider_prefix: a stripped id that is one model's id and another's alias", () => {
    const two = new InMemoryPricingSource([
      priced("mistral-large", "2", "6"),
      priced("mistral-large-2411", "2", "6", { aliases: ["mistral-large"] }),
    ] as never);
    expect(
      two.resolvePriceSync({
        model: { billableModel: "mistral/mistral-large" },
        at: AT,
        providerId: "mistral",
      }),
    ).toEqual({
      status: "unpriced",
      reason: "ambiguous_model",
      rule: "provider_prefix",
      candidates: ["mistral-large", "mistral-large-2411"],
    });
  });

  it("dated_suffix: an undated id claimed twice", () => {
    const two = new InMemoryPricingSource([
      priced("gpt-4o", "2.5", "10"),
      priced("gpt-4o-2024-08-06", "2.5", "10", { aliases: ["gpt-4o"] }),
    ] as never);
    expect(two.resolvePriceSync({ model: { billableModel: "gpt-4o-2024-11-20" }, at: AT })).toEqual({
      status: "unpriced",
      reason: "ambiguous_model",
      rule: "dated_suffix",
      candidates: ["gpt-4o", "gpt-4o-2024-08-06"],
    });
    // The exact id is not ambiguous: exact always wins.
    expect(two.resolvePriceSync({ model: { billableModel: "gpt-4o" }, at: AT })).toMatchObject({
      match: { rule: "exact" },
    });
  });
});

describe("model matching: forms", () => {
  it("removes provider, region, vendor and version qualifiers in a fixed order", () => {
    expect(qualifierForms("bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0")).toEqual([
      "bedrock/us.anthropic.claude-3-5-sonnet-20241022-v2:0",
      "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
      "anthropic.claude-3-5-sonnet-20241022-v2:0",
      "claude-3-5-sonnet-20241022-v2:0",
      "claude-3-5-sonnet-20241022",
    ]);
    expect(qualifierForms("openrouter/openai/gpt-4o")).toEqual([
      "openrouter/openai/gpt-4o",
      "openai/gpt-4o",
      "gpt-4o",
    ]);
    expect(qualifierForms("claude-sonnet-4-5@20250929")).toEqual([
      "claude-sonnet-4-5@20250929",
      "claude-sonnet-4-5-20250929",
    ]);
    // Nothing that merely looks like a qualifier: a dot in a version number, a trailing slash.
    expect(qualifierForms("gpt-3.5-turbo")).toEqual(["gpt-3.5-turbo"]);
    expect(qualifierForms("us.")).toEqual(["us."]);
    expect(qualifierForms("gpt-4o/")).toEqual(["gpt-4o/"]);
  });

  it("reads only real dates and -latest as dated suffixes", () => {
    expect(withoutDateSuffix("gpt-4o-2024-08-06")).toBe("gpt-4o");
    expect(withoutDateSuffix("claude-3-5-sonnet-20241022")).toBe("claude-3-5-sonnet");
    expect(withoutDateSuffix("claude-3-5-sonnet-latest")).toBe("claude-3-5-sonnet");
    expect(withoutDateSuffix("gpt-4-0613")).toBeUndefined();
    expect(withoutDateSuffix("llama3-70b-8192")).toBeUndefined();
    expect(withoutDateSuffix("model-20241399")).toBeUndefined(); // month 13
    expect(withoutDateSuffix("model-2024-13-01")).toBeUndefined();
    expect(withoutDateSuffix("-latest")).toBeUndefined();
  });

  it("matchModel works over any catalog, e.g. a custom pricing source's", () => {
    const ids = new Set(["gpt-4o"]);
    const catalog: ModelCatalog = { hasModel: (id) => ids.has(id), modelsAliasedAs: () => [] };
    expect(matchModel("gpt-4o-2024-08-06", "openai", catalog)).toEqual({
      kind: "matched",
      rule: "dated_suffix",
      matchedModel: "gpt-4o",
      via: "gpt-4o",
    });
  });
});

describe("model matching: snapshots and records", () => {
  it("validates aliases: not the snapshot's own id, no duplicates", () => {
    const e = thrown(
      () =>
        new InMemoryPricingSource([priced("gpt-4o", "1", "1", { aliases: ["a", "gpt-4o", "a"] })] as never),
    );
    expect((e as { issues: Array<{ path: string; message: string }> }).issues).toEqual([
      { path: "snapshots.0.aliases.1", message: "is the snapshot's own billableModel" },
      { path: "snapshots.0.aliases.2", message: "duplicates an earlier alias" },
    ]);
  });

  it("the engine takes the matched id from the context, and refuses anything else", () => {
    const snap = SHEET[0] as never;
    const obs = observation({ input_tokens: 1000 }, { model: { billableModel: "gpt-4o-2024-08-06" } });
    const modelMatch = { rule: "dated_suffix", matchedModel: "gpt-4o" } as const;
    const record = engine.rate(obs, snap, { ...ctx, modelMatch });
    expect(record.modelMatch).toEqual(modelMatch);
    expect(RatedUsageRecordSchema.parse(record).modelMatch).toEqual(modelMatch);
    const paths = (fn: () => unknown) =>
      (thrown(fn) as { issues: Array<{ path: string }> }).issues.map((i) => i.path);
    expect(paths(() => engine.rate(obs, snap, ctx))).toEqual(["model.billableModel"]);
    expect(
      paths(() => engine.rate(obs, snap, { ...ctx, modelMatch: { ...modelMatch, matchedModel: "gpt-4" } })),
    ).toEqual(["model.billableModel"]);
    expect(
      paths(() => engine.rate(obs, snap, { ...ctx, modelMatch: { ...modelMatch, rule: "exact" as never } })),
    ).toEqual(["modelMatch.rule"]);
    // A match on an exact call would change the record's hash for nothing: refused.
    const exact = observation({ input_tokens: 1000 }, { model: { billableModel: "gpt-4o" } });
    expect(paths(() => engine.rate(exact, snap, { ...ctx, modelMatch }))).toEqual(["modelMatch"]);
  });

  it("a correction keeps the match (version 2 carries it, with supersedes)", () => {
    const obs = observation({ input_tokens: 10 }, { model: { billableModel: "acme-chat" } });
    const modelMatch = { rule: "alias", matchedModel: "gpt-4o" } as const;
    const v2 = engine.rate(obs, SHEET[0] as never, { ...ctx, version: 2, modelMatch });
    expect(v2).toMatchObject({ version: 2, supersedes: "req-1:0:openai:v1", modelMatch });
  });

  it("property: a resolution is deterministic and its matched id is always a priced model in effect", () => {
    const ids = SHEET.map((s) => s.model.billableModel);
    const callIds = fc.oneof(
      fc.constantFrom(...ids),
      fc
        .tuple(
          fc.constantFrom("", "openai/", "anthropic/", "bedrock/", "openrouter/openai/"),
          fc.constantFrom("", "us.", "eu.", "global."),
          fc.constantFrom("", "anthropic."),
          fc.constantFrom(...ids, "acme-chat", "gpt-5"),
          fc.constantFrom("", "-2024-08-06", "-20241022", "-latest", "-v2:0", "@20240229"),
        )
        .map((parts) => parts.join("")),
    );
    fc.assert(
      fc.property(
        callIds,
        fc.constantFrom("openai", "openrouter", "bedrock", "anthropic"),
        (id, provider) => {
          const request = { model: { billableModel: id }, at: AT, providerId: provider };
          const first = source.resolvePriceSync(request);
          expect(source.resolvePriceSync(request)).toEqual(first);
          if (first.status === "priced") {
            expect(ids).toContain(first.match.matchedModel);
            expect(first.snapshot.model.billableModel).toBe(first.match.matchedModel);
            if (ids.includes(id)) expect(first.match).toEqual({ rule: "exact", matchedModel: id });
          }
        },
      ),
    );
  });
});
