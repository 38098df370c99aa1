import { describe, expect, it, vi } from "vitest";
import { InvalidTierConfigError, NoSnapshotInEffectError, OverflowError } from "../../src/errors/index.js";
import { DefaultRatingEngine, LatchError, LatchValidationError, parseObservation } from "../../src/index.js";
import { ctx, observation, snapshot, thrown } from "../support.js";

const engine = new DefaultRatingEngine();
const sheet = snapshot({ prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "2" } } });

function expectInvalid(fn: () => unknown, path: string) {
  const e = thrown(fn);
  expect(LatchError.isInstance(e)).toBe(true);
  expect(e).toBeInstanceOf(LatchValidationError);
  const v = e as LatchValidationError;
  expect(v.code).toBe("invalid_input");
  expect(v.issues.map((i) => i.path)).toContain(path);
  return v;
}

describe("bad counts are rejected with the field named", () => {
  const cases: Array<[string, unknown]> = [
    ["negative", -1],
    ["fractional", 1.5],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a string", "100"],
    ["above 2^53-1", 2 ** 53],
  ];
  for (const [name, value] of cases) {
    it(`${name}`, () => {
      const obs = observation({ input_tokens: value as number });
      const v = expectInvalid(() => engine.rate(obs, sheet as never, ctx), "meters.input_tokens");
      expect(v.message).toMatch(/^Invalid UsageObservation: meters\.input_tokens: /);
      // The received value never reaches the message.
      if (typeof value === "string") expect(v.message).not.toContain(value);
    });
  }

  it("an unknown meter", () => {
    expectInvalid(() => parseObservation(observation({ ["tokens" as "input_tokens"]: 1 })), "meters.tokens");
  });
});

describe("observation fields", () => {
  it("attribute key over 64 bytes", () => {
    const key = "k".repeat(65);
    expectInvalid(
      () => parseObservation(observation({}, { attributes: { [key]: "v" } })),
      `attributes.${key}`,
    );
  });
  it("attribute key of 64 bytes is fine, multi-byte characters count as bytes", () => {
    expect(
      parseObservation(observation({}, { attributes: { ["k".repeat(64)]: "v" } })).attributes,
    ).toBeDefined();
    expectInvalid(
      () => parseObservation(observation({}, { attributes: { ["é".repeat(33)]: "v" } })),
      `attributes.${"é".repeat(33)}`,
    );
  });
  it("attribute value over 256 bytes", () => {
    expectInvalid(
      () => parseObservation(observation({}, { attributes: { team: "v".repeat(257) } })),
      "attributes.team",
    );
  });
  it("attribute with the reserved sys. prefix", () => {
    expectInvalid(
      () => parseObservation(observation({}, { attributes: { "sys.cost": "1" } })),
      "attributes.sys.cost",
    );
  });
  it("missing tenant", () => {
    expectInvalid(() => parseObservation(observation({}, { subject: {} as never })), "subject.tenantId");
  });
  it("timestamps must be ISO UTC and ordered", () => {
    expectInvalid(
      () =>
        parseObservation(
          observation({}, { timing: { startedAt: "yesterday", completedAt: "2026-03-01T12:00:00Z" } }),
        ),
      "timing.startedAt",
    );
    expectInvalid(
      () =>
        parseObservation(
          observation(
            {},
            { timing: { startedAt: "2026-03-01T12:00:00Z", completedAt: "2026-03-01T11:00:00Z" } },
          ),
        ),
      "timing.completedAt",
    );
  });
  it("a parsed observation is frozen, so it cannot change after validation", () => {
    const obs = parseObservation(observation({ input_tokens: 1 }));
    expect(Object.isFrozen(obs.meters)).toBe(true);
    expect(() => {
      (obs.meters as Record<string, number>).input_tokens = -5;
    }).toThrow(TypeError);
  });
});

describe("snapshots", () => {
  it("unknown currency", () => {
    expectInvalid(
      () => engine.rate(observation({}), snapshot({ currency: "XYZ" }) as never, ctx),
      "currency",
    );
    expectInvalid(
      () => engine.rate(observation({}), snapshot({ currency: "usd" }) as never, ctx),
      "currency",
    );
  });
  it("a price given as a JS number is refused", () => {
    expectInvalid(
      () =>
        engine.rate(
          observation({}),
          snapshot({ prices: { input_tokens: { perMillion: 3 as never } } }) as never,
          ctx,
        ),
      "prices.input_tokens",
    );
  });
  it("negative or exponent prices are refused", () => {
    for (const bad of ["-1", "3e-6", " 3", "1."]) {
      expectInvalid(
        () =>
          engine.rate(
            observation({}),
            snapshot({ prices: { input_tokens: { perMillion: bad } } }) as never,
            ctx,
          ),
        "prices.input_tokens.perMillion",
      );
    }
  });
  it("an alias cycle", () => {
    const s = snapshot({
      prices: { input_tokens: { as: "output_tokens" }, output_tokens: { as: "input_tokens" } },
    });
    expectInvalid(
      () => engine.rate(observation({ input_tokens: 1 }), s as never, ctx),
      "prices.input_tokens.as",
    );
  });
  it("the snapshot must price the observation's model", () => {
    const s = snapshot({ model: { billableModel: "other" }, prices: {} });
    expectInvalid(() => engine.rate(observation({}), s as never, ctx), "model.billableModel");
  });
  it("the snapshot must be in effect at completedAt (half-open interval)", () => {
    const s = snapshot({ effectiveFrom: "2026-01-01T00:00:00Z", effectiveUntil: "2026-03-01T12:00:01Z" });
    const e = thrown(() => engine.rate(observation({}), s as never, ctx));
    expect(e).toBeInstanceOf(NoSnapshotInEffectError);
    expect((e as LatchError).code).toBe("no_snapshot_in_effect");
  });
});

describe("tier configuration", () => {
  const tier = (boundaries: unknown, extra: object = {}) =>
    snapshot({
      tiers: [{ scope: "request", mode: "volume", baseline: "prompt_tokens", boundaries, ...extra } as never],
    });
  const rate = (s: unknown) => engine.rate(observation({ input_tokens: 1 }), s as never, ctx);
  const p = (x: string) => ({ input_tokens: { perMillion: x } });

  it("the last boundary must be open", () => {
    const e = thrown(() => rate(tier([{ upTo: 10, prices: p("1") }])));
    expect(e).toBeInstanceOf(InvalidTierConfigError);
    expect((e as InvalidTierConfigError).path).toBe("tiers.0.boundaries.0.upTo");
  });
  it("boundaries must increase", () => {
    const e = thrown(() =>
      rate(
        tier([
          { upTo: 10, prices: p("1") },
          { upTo: 10, prices: p("1") },
          { upTo: null, prices: p("1") },
        ]),
      ),
    );
    expect((e as InvalidTierConfigError).code).toBe("invalid_tier_config");
    expect((e as InvalidTierConfigError).path).toBe("tiers.0.boundaries.1.upTo");
  });
  it("every boundary prices every meter of its tier", () => {
    const e = thrown(() =>
      rate(
        tier([
          { upTo: 10, prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "1" } } },
          { upTo: null, prices: p("2") },
        ]),
      ),
    );
    expect((e as InvalidTierConfigError).path).toBe("tiers.0.boundaries.1.prices.output_tokens");
  });
  it("graduated tiers only price meters inside the baseline", () => {
    const s = snapshot({
      tiers: [
        {
          scope: "request",
          mode: "graduated",
          baseline: { meter: "input_tokens" },
          boundaries: [
            { upTo: 10, prices: { output_tokens: { perMillion: "1" } } },
            { upTo: null, prices: { output_tokens: { perMillion: "1" } } },
          ],
        },
      ],
    });
    expect((thrown(() => rate(s)) as InvalidTierConfigError).path).toBe("tiers.0.baseline");
  });
  it("a meter in two tier configurations", () => {
    const one = {
      scope: "request",
      mode: "volume",
      baseline: "prompt_tokens",
      boundaries: [{ upTo: null, prices: p("1") }],
    };
    const e = thrown(() => rate(snapshot({ tiers: [one, one] as never })));
    expect((e as InvalidTierConfigError).path).toBe("tiers.1.boundaries.0.prices.input_tokens");
  });
  it("an overflowing baseline is an overflow error, not a wrong price", () => {
    const s = tier([
      { upTo: 10, prices: { input_tokens: { perMillion: "1" }, cached_input_tokens: { perMillion: "1" } } },
      { upTo: null, prices: { input_tokens: { perMillion: "1" }, cached_input_tokens: { perMillion: "1" } } },
    ]);
    const max = Number.MAX_SAFE_INTEGER;
    const e = thrown(() =>
      engine.rate(observation({ input_tokens: max, cached_input_tokens: max }), s as never, ctx),
    );
    expect(e).toBeInstanceOf(OverflowError);
    expect((e as LatchError).code).toBe("overflow");
  });
});

describe("rating context", () => {
  it("ratedAt must be an ISO UTC timestamp", () => {
    expectInvalid(() => engine.rate(observation({}), sheet as never, { ratedAt: "now" }), "ratedAt");
    expectInvalid(() => engine.rate(observation({}), sheet as never, { ratedAt: "" }), "ratedAt");
  });
  it("version must be a positive integer", () => {
    expectInvalid(() => engine.rate(observation({}), sheet as never, { ...ctx, version: 0 }), "version");
  });
  it("a first version supersedes nothing", () => {
    expectInvalid(
      () => engine.rate(observation({}), sheet as never, { ...ctx, supersedes: "x:v0" }),
      "supersedes",
    );
  });
  it("a missing ratedAt is refused, also before any valid one was seen", async () => {
    // A fresh module: its cache of the last valid ratedAt starts empty (undefined).
    vi.resetModules();
    const { DefaultRatingEngine: Fresh } = await import("../../src/rating/engine.js");
    const fresh = new Fresh() as DefaultRatingEngine;
    // (Its error classes are the fresh module's own: compared by code and path, not by class.)
    const e = thrown(() => fresh.rate(observation({}), sheet as never, {} as never)) as LatchValidationError;
    expect(e.code).toBe("invalid_input");
    expect(e.issues.map((i) => i.path)).toContain("ratedAt");
    expectInvalid(() => engine.rate(observation({}), sheet as never, {} as never), "ratedAt");
  });
  it("each context field is read once: a getter that changes its answer cannot reach the record", () => {
    let reads = 0;
    const context = {
      get ratedAt() {
        reads++;
        return reads === 1 ? "2026-03-01T00:00:00Z" : "not a timestamp";
      },
      get modelMatch() {
        return undefined;
      },
    };
    const record = engine.rate(observation({}), sheet as never, context as never);
    expect(record.ratedAt).toBe("2026-03-01T00:00:00Z");
    expect(reads).toBe(1);
    let baselineReads = 0;
    const baseline = {
      get input_tokens() {
        baselineReads++;
        return baselineReads === 1 ? 5 : -1;
      },
    };
    engine.rate(observation({}), sheet as never, { ...ctx, periodBaseline: baseline } as never);
    expect(baselineReads).toBe(1);
  });
});
