/**
 * Differential property test of `record()`'s inline path (`facade/record-inline.ts`) against
 * the step-by-step path: random scripts of calls (replays, conflicts, holds, corrections of
 * stored calls, unpriced models priced later, period tiers, concurrent groups) run through a
 * latch on the memory stores themselves (inline) and through one on Proxies of the same kind
 * of stores (step by step); every answer, warning and the stored state must be equal.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { createLatch } from "../../src/facade/create-latch.js";
import type { Hold, LatchWarning } from "../../src/facade/types.js";
import { InMemoryPricingSource, type PriceSnapshot, type UsageObservation } from "../../src/index.js";
import {
  MemoryObservationStore,
  MemoryRatedRecordStore,
  MemoryUsageCounter,
} from "../../src/memory/index.js";
import { observation } from "../support.js";

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

const flat: PriceSnapshot = {
  snapshotId: "test-model:2026",
  model: { billableModel: "test-model" },
  aliases: ["house-model"],
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
};
const twin: PriceSnapshot = { ...flat, snapshotId: "twin:2026", model: { billableModel: "twin" } };
const monthly: PriceSnapshot = {
  snapshotId: "tiered:2026",
  model: { billableModel: "tiered" },
  currency: "USD",
  effectiveFrom: "2026-01-01T00:00:00Z",
  prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } },
  tiers: [
    {
      scope: "period",
      mode: "graduated",
      baseline: "total_tokens",
      boundaries: [
        { upTo: 2_000, prices: { input_tokens: { perMillion: "2" }, output_tokens: { perMillion: "8" } } },
        { upTo: null, prices: { input_tokens: { perMillion: "1" }, output_tokens: { perMillion: "4" } } },
      ],
    },
  ],
};
/** Priced until mid-2026 only: calls completed from then on have no snapshot. */
const expiring: PriceSnapshot = {
  ...flat,
  snapshotId: "expiring:2026",
  model: { billableModel: "expiring" },
  aliases: undefined,
  effectiveUntil: "2026-07-01T00:00:00Z",
};
/** Priced only once a step adds it. */
const late: PriceSnapshot = {
  ...flat,
  snapshotId: "late:2026",
  model: { billableModel: "late" },
  aliases: undefined,
};

const passThrough = <T extends object>(target: T): T =>
  new Proxy(target, {
    get(obj, key) {
      const value = Reflect.get(obj, key, obj) as unknown;
      return typeof value === "function" ? value.bind(obj) : value;
    },
  });

type Call = {
  id: number;
  model: string;
  tier: boolean;
  meters: Record<string, number>;
  hold: number;
  corrected: boolean;
  /** When the call completed (each form of timestamp, either side of the snapshots' bounds). */
  at: string;
  provider: string | undefined;
};
type Step =
  | { kind: "record"; call: Call }
  | { kind: "group"; calls: Call[] }
  | { kind: "addLate" }
  | { kind: "correct"; id: number; input: number }
  | { kind: "rerate" }
  | { kind: "toggle"; what: "clockThrows" | "clockInvalid" | "warnThrows" };

const call: fc.Arbitrary<Call> = fc.record({
  id: fc.integer({ min: 0, max: 5 }),
  model: fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom("test-model", "twin", "tiered", "late", "openai/test-model", "expiring"),
    },
    { weight: 1, arbitrary: fc.constantFrom("house-model", "nowhere") },
  ),
  tier: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
  meters: fc
    .record(
      {
        input_tokens: fc.integer({ min: 0, max: 3_000 }),
        output_tokens: fc.integer({ min: 0, max: 3 }),
      },
      { requiredKeys: ["input_tokens"] },
    )
    .chain((m) => fc.integer({ min: 0, max: 5 }).map((n) => (n === 0 ? { ...m, reasoning_tokens: 7 } : m))),
  hold: fc.integer({ min: 0, max: 2 }),
  corrected: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
  at: fc.oneof(
    { weight: 4, arbitrary: fc.constant("2026-03-01T12:00:01Z") },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        "2026-03-01T12:00:01.500Z",
        "2026-06-30T23:59:59.999999Z",
        "2026-07-01T00:00:00Z",
        "2026-07-01T00:00:00.000Z",
        "2027-01-01T00:00:00Z",
      ),
    },
  ),
  provider: fc.constantFrom("openai", "openai", "anthropic", undefined),
});
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: call.map((c) => ({ kind: "record", call: c }) as const) },
  {
    weight: 2,
    arbitrary: fc
      .array(call, { minLength: 2, maxLength: 4 })
      .map((cs) => ({ kind: "group", calls: cs }) as const),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "addLate" } as const) },
  {
    weight: 1,
    arbitrary: fc
      .record({ id: fc.integer({ min: 0, max: 5 }), input: fc.integer({ min: 0, max: 50 }) })
      .map((c) => ({ kind: "correct", ...c }) as const),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "rerate" } as const) },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("clockThrows", "clockInvalid", "warnThrows")
      .map((what) => ({ kind: "toggle", what }) as const),
  },
);

/** Event ids whose code-unit order is not their code-point order, and prefixes of one another. */
const IDS = ["e0:0:openai", "e0:0:openai\u{1F600}", "e0:0:openai\uFFFF", "e1:0:openai", "\u{10000}", "e"];

function inputOf(c: Call): { obs: UsageObservation; hold: Hold | undefined } {
  const base = observation(c.meters, {
    eventId: IDS[c.id] as string,
    timing: { startedAt: "2026-01-01T00:00:00Z", completedAt: c.at },
    model: c.tier ? { billableModel: c.model, tier: "priority" } : { billableModel: c.model },
    ...(c.corrected
      ? { source: { kind: "corrected", correctionOf: IDS[(c.id + 1) % IDS.length] as string } }
      : {}),
  });
  const { provider: _provider, ...unserved } = base;
  const obs = c.provider === undefined ? unserved : { ...base, provider: { providerId: c.provider } };
  const hold: Hold | undefined =
    c.hold === 0
      ? undefined
      : { granted: true, kind: "quota", holdId: `h${c.hold}`, account: "acme", amount: 1, remaining: 1 };
  return { obs, hold };
}

const answerOf = (r: PromiseSettledResult<unknown>): unknown =>
  r.status === "fulfilled"
    ? r.value
    : {
        refused: (r.reason as { code?: string }).code ?? String(r.reason),
        message: (r.reason as Error).message,
      };

async function run(steps: readonly Step[], awaitReady: boolean, inline: boolean, dir: string) {
  const observations = new MemoryObservationStore();
  const rated = new MemoryRatedRecordStore();
  const pricing = new InMemoryPricingSource([flat, twin, monthly, expiring]);
  const counter = new MemoryUsageCounter();
  const warnings: LatchWarning[] = [];
  let clockCalls = 0;
  const faults = { clockThrows: false, clockInvalid: false, warnThrows: false };
  const latch = createLatch({
    observations: inline ? observations : passThrough(observations),
    rated: inline ? rated : passThrough(rated),
    pricing: inline ? pricing : passThrough(pricing),
    counter,
    clock: () => {
      clockCalls++;
      if (faults.clockThrows) throw new Error("clock down");
      return new Date(faults.clockInvalid ? Number.NaN : Date.parse("2026-03-01T12:00:05Z"));
    },
    spoolDir: dir,
    onWarning: (w) => {
      warnings.push(w);
      if (faults.warnThrows) throw new Error(`onWarning threw on ${w.code}`);
    },
  });
  if (awaitReady) await latch.ready(); // else the first calls wait for the start-up replay
  const answers: unknown[] = [];
  const record = (c: Call) => {
    const { obs, hold } = inputOf(c);
    return latch.record(obs, hold === undefined ? undefined : { hold });
  };
  const perStep: string[][] = [];
  for (const s of steps) {
    if (s.kind === "record") answers.push(answerOf((await Promise.allSettled([record(s.call)]))[0]!));
    else if (s.kind === "group") answers.push((await Promise.allSettled(s.calls.map(record))).map(answerOf));
    else if (s.kind === "addLate") {
      try {
        pricing.add(late);
        answers.push("added");
      } catch (error) {
        answers.push((error as { code?: string }).code);
      }
    } else if (s.kind === "correct")
      answers.push(
        answerOf(
          (await Promise.allSettled([latch.correct(IDS[s.id] as string, { input_tokens: s.input })]))[0]!,
        ),
      );
    else if (s.kind === "toggle") faults[s.what] = !faults[s.what];
    else answers.push(answerOf((await Promise.allSettled([latch.rerateUnpriced()]))[0]!));
    // Concurrent calls warn in the order their steps run: each step's warnings, as a set.
    perStep.push(
      warnings
        .splice(0)
        .map((w) => JSON.stringify([w.code, w.eventId, w.message]))
        .sort(),
    );
  }
  const unpriced = (await observations.listUnpriced({ limit: 100 })).items.map((o) => o.eventId);
  const log = (await rated.listSince(undefined, 1_000)).items.map((e) => e.record);
  const stored = await Promise.all(IDS.map((id) => observations.get(id)));
  await latch.close();
  return {
    answers,
    unpriced,
    log,
    stored,
    clockCalls,
    warnings: perStep,
  };
}

describe("record() inline vs step by step, differential", () => {
  it("random scripts: the same answers, warnings and stored state", async () => {
    const dir = await mkdtemp(join(tmpdir(), "latch-inline-diff-"));
    dirs.push(dir);
    let rated = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { minLength: 1, maxLength: 25 }),
        fc.boolean(),
        async (steps, awaitReady) => {
          const inline = await run(steps, awaitReady, true, join(dir, "a"));
          const stepwise = await run(steps, awaitReady, false, join(dir, "b"));
          expect(inline).toEqual(stepwise);
          rated += inline.log.length;
        },
      ),
      { numRuns: Number(process.env.DIFF_RUNS ?? 150) },
    );
    expect(rated).toBeGreaterThan(100); // the scripts rate, not only refuse
  });
});
