import { describe, expect, it } from "vitest";
import { NoSnapshotInEffectError } from "../../src/errors/index.js";
import { InMemoryPricingSource, LatchValidationError } from "../../src/index.js";
import { snapshot, thrown } from "../support.js";

const jan = snapshot({
  snapshotId: "jan",
  effectiveFrom: "2026-01-01T00:00:00Z",
  effectiveUntil: "2026-02-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "3" } },
});
const feb = snapshot({
  snapshotId: "feb",
  effectiveFrom: "2026-02-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" } },
});
const model = { billableModel: "test-model" };

describe("InMemoryPricingSource", () => {
  const source = new InMemoryPricingSource([jan, feb] as never);

  it("resolves the snapshot in effect on half-open intervals", async () => {
    expect((await source.resolve(model, "2026-01-01T00:00:00Z"))?.snapshotId).toBe("jan");
    expect((await source.resolve(model, "2026-01-31T23:59:59.999Z"))?.snapshotId).toBe("jan");
    expect((await source.resolve(model, "2026-02-01T00:00:00Z"))?.snapshotId).toBe("feb");
    expect((await source.resolve(model, "2030-01-01T00:00:00Z"))?.snapshotId).toBe("feb");
  });

  it("returns undefined before the first snapshot and for unknown models; require() throws", async () => {
    expect(await source.resolve(model, "2025-12-31T23:59:59Z")).toBeUndefined();
    expect(await source.resolve({ billableModel: "nope" }, "2026-01-05T00:00:00Z")).toBeUndefined();
    expect(thrown(() => source.require(model, "2025-12-31T23:59:59Z"))).toBeInstanceOf(
      NoSnapshotInEffectError,
    );
  });

  it("rejects overlapping snapshots for one model at load, naming the snapshot", () => {
    const overlapping = snapshot({
      snapshotId: "overlap",
      effectiveFrom: "2026-01-15T00:00:00Z",
      prices: {},
    });
    const e = thrown(() => new InMemoryPricingSource([jan, feb, overlapping] as never));
    expect(e).toBeInstanceOf(LatchValidationError);
    expect((e as LatchValidationError).issues[0]?.path).toBe("snapshots.2.effectiveFrom");
  });

  it("rejects duplicate snapshot ids and invalid snapshots by path", () => {
    const dup = thrown(() => new InMemoryPricingSource([jan, { ...feb, snapshotId: "jan" }] as never));
    expect((dup as LatchValidationError).issues[0]?.path).toBe("snapshots.1.snapshotId");
    const bad = thrown(() => new InMemoryPricingSource([{ ...jan, currency: "ZZZ" }] as never));
    expect((bad as LatchValidationError).issues[0]?.path).toBe("snapshots.0.currency");
  });

  it("prefers a region-specific snapshot where it matches, and allows it to overlap the generic one", async () => {
    const eu = snapshot({
      snapshotId: "eu",
      model: { billableModel: "test-model", region: "eu" },
      prices: {},
    });
    const s = new InMemoryPricingSource([jan, feb, eu] as never);
    expect(
      (await s.resolve({ billableModel: "test-model", region: "eu" }, "2026-03-01T00:00:00Z"))?.snapshotId,
    ).toBe("eu");
    expect(
      (await s.resolve({ billableModel: "test-model", region: "us" }, "2026-03-01T00:00:00Z"))?.snapshotId,
    ).toBe("feb");
  });

  it("validates a price request naming the field", () => {
    const pathOf = (request: unknown) =>
      (thrown(() => source.resolvePriceSync(request as never)) as LatchValidationError).issues[0]?.path;
    expect(pathOf({ model, at: "" })).toBe("at");
    expect(pathOf({ model: { billableModel: "" }, at: "2026-01-01T00:00:00Z" })).toBe("model.billableModel");
    expect(pathOf({ model: { billableModel: "x", extra: 1 }, at: "2026-01-01T00:00:00Z" })).toBe("model");
    expect(pathOf({ model, at: "2026-01-01T00:00:00Z", providerId: "" })).toBe("providerId");
    expect(pathOf(null)).toBe("");
  });

  it("validates its arguments", async () => {
    await expect(source.resolve(model, "not a time")).rejects.toMatchObject({ code: "invalid_input" });
    const aborted = AbortSignal.abort();
    await expect(source.resolve(model, "2026-01-01T00:00:00Z", aborted)).rejects.toThrow();
  });
});

describe("a snapshot id rated records can carry", () => {
  it("refuses U+0000 and lone surrogates in snapshotId, naming the field", () => {
    for (const snapshotId of ["jan\u0000", "jan\ud800", "\udc00jan"]) {
      const error = thrown(
        () => new InMemoryPricingSource([{ ...jan, snapshotId }] as never),
      ) as LatchValidationError;
      expect(error).toBeInstanceOf(LatchValidationError);
      expect(JSON.stringify(error.issues ?? error.message)).toContain("snapshotId");
    }
    // A well-formed id with astral characters stays valid.
    expect(() => new InMemoryPricingSource([{ ...jan, snapshotId: "jan-😀" }] as never)).not.toThrow();
  });
});
