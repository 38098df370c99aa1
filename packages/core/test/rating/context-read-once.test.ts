import { describe, expect, it } from "vitest";
import { DefaultRatingEngine, LatchValidationError, parseObservation } from "../../src/index.js";
import { ctx, observation, snapshot, thrown } from "../support.js";

// Adversarial contexts against DefaultRatingEngine.rate: getters and Proxies that answer
// differently per read, and period baselines with inherited, hidden or odd keys. What the
// record holds must be what was checked, and only what was checked.
const engine = new DefaultRatingEngine();
const graduated = snapshot({
  tiers: [
    {
      scope: "period",
      mode: "graduated",
      baseline: { meter: "input_tokens" },
      boundaries: [
        { upTo: 1_000_000, prices: { input_tokens: { perMillion: "2" } } },
        { upTo: null, prices: { input_tokens: { perMillion: "1" } } },
      ],
    },
  ],
});
const obs = parseObservation(observation({ input_tokens: 100 }));
const rate = (context: unknown) => engine.rate(obs, graduated as never, context as never);
const reference = (baseline: number) =>
  rate({ ...ctx, periodBaseline: { input_tokens: baseline } }) as { total: string };

function invalidAt(fn: () => unknown): string[] {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(LatchValidationError);
  return (e as LatchValidationError).issues.map((i) => i.path);
}

/** A value that answers `first` to its first read and `later` to every other one. */
function flipping<T>(first: T, later: unknown): { read: () => T; reads: () => number } {
  let n = 0;
  return { read: () => (n++ === 0 ? first : (later as T)), reads: () => n };
}

describe("rate(): every context field is read once, and the record holds what was checked", () => {
  it("version, supersedes and modelMatch getters that change their answer after the check", () => {
    const other = parseObservation(
      observation({ input_tokens: 100 }, { model: { billableModel: "alias-x" } }),
    );
    const version2 = flipping(2, 0);
    const supersedes2 = flipping("req-1:0:openai:v1", 7);
    const viaGetters = engine.rate(
      obs,
      graduated as never,
      {
        ratedAt: ctx.ratedAt,
        periodBaseline: { input_tokens: 0 },
        get version() {
          return version2.read();
        },
        get supersedes() {
          return supersedes2.read();
        },
      } as never,
    );
    expect(viaGetters.version).toBe(2);
    expect(viaGetters.supersedes).toBe("req-1:0:openai:v1");
    expect(version2.reads()).toBe(1);
    expect(supersedes2.reads()).toBe(1);
    // A model matched through getters: the record's match is the checked one.
    const rule2 = flipping("alias", "not-a-rule");
    const matched2 = flipping("test-model", "someone-else");
    const byMatch = engine.rate(
      other,
      graduated as never,
      {
        ratedAt: ctx.ratedAt,
        periodBaseline: { input_tokens: 0 },
        modelMatch: {
          get rule() {
            return rule2.read();
          },
          get matchedModel() {
            return matched2.read();
          },
        },
      } as never,
    );
    expect(byMatch.snapshotId).toBe("snap-1");
    expect(rule2.reads()).toBe(1);
    expect(matched2.reads()).toBe(1);
  });

  it("a Proxy context and a Proxy baseline: each key read once, the checked value used", () => {
    const reads = new Map<PropertyKey, number>();
    const count = (key: PropertyKey) => {
      const n = (reads.get(key) ?? 0) + 1;
      reads.set(key, n);
      return n;
    };
    const baseline = new Proxy({ input_tokens: 1_000_000 } as Record<string, number>, {
      get(target, key) {
        return count(`baseline.${String(key)}`) === 1 ? target[key as string] : -5;
      },
    });
    const context = new Proxy(
      { ratedAt: "2026-03-01T12:00:06Z", periodBaseline: baseline } as Record<string, unknown>,
      {
        get(target, key) {
          return count(key) === 1 ? target[key as string] : "not a timestamp";
        },
      },
    );
    const record = rate(context);
    expect(record.ratedAt).toBe("2026-03-01T12:00:06Z");
    expect(record.total).toBe(reference(1_000_000).total);
    for (const [key, n] of reads) expect(n, String(key)).toBe(1);
  });

  it("a baseline whose value hides on the prototype (a class getter, not enumerable) is refused as missing, never used unchecked", () => {
    class Baseline {
      get input_tokens() {
        return -5; // never checked by a for…in: it must not be rated with
      }
    }
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: new Baseline() }))).toContain(
      "periodBaseline.input_tokens",
    );
    const hidden = Object.defineProperty({}, "input_tokens", { value: 1.5, enumerable: false });
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: hidden }))).toContain(
      "periodBaseline.input_tokens",
    );
  });

  it("inherited enumerable keys are checked and used like own ones", () => {
    const inherited = Object.create({ input_tokens: 999_990 }) as Record<string, number>;
    expect(rate({ ...ctx, periodBaseline: inherited }).total).toBe(reference(999_990).total);
    const bad = Object.create({ input_tokens: -1 }) as Record<string, number>;
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: bad }))).toContain("periodBaseline.input_tokens");
  });

  it("__proto__, constructor and unknown keys: checked, never a prototype of the copy", () => {
    const parsed = JSON.parse('{"__proto__": 3, "constructor": 4, "input_tokens": 999990, "other": 1}');
    expect(rate({ ...ctx, periodBaseline: parsed }).total).toBe(reference(999_990).total);
    // A __proto__ key holding an object with input_tokens must not be inherited by the copy.
    const poisoned = JSON.parse('{"__proto__": {"input_tokens": 5}}');
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: poisoned }))).toContain("periodBaseline.__proto__");
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: JSON.parse('{"__proto__": -1}') }))).toContain(
      "periodBaseline.__proto__",
    );
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: { input_tokens: 1, other: -1 } }))).toContain(
      "periodBaseline.other",
    );
    // Keys of Object.prototype are never baseline values.
    const empty = {};
    expect(invalidAt(() => rate({ ...ctx, periodBaseline: empty }))).toContain("periodBaseline.input_tokens");
  });

  it("a ratedAt that is not a primitive string (a String object, a Date) is refused, also right after the same text passed", () => {
    expect(rate({ ...ctx, periodBaseline: { input_tokens: 0 } }).ratedAt).toBe(ctx.ratedAt);
    for (const ratedAt of [new String(ctx.ratedAt), new Date(ctx.ratedAt), { toString: () => ctx.ratedAt }]) {
      expect(invalidAt(() => rate({ ratedAt, periodBaseline: { input_tokens: 0 } }))).toContain("ratedAt");
    }
  });
});
